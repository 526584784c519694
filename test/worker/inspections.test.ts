// Every test that decides a node challenge or moves the rewards pool, in one file so that they run
// one after another: a decided challenge draws its inspectors from every bonded account with a
// key in the shared database, so the inspector tests (which register such accounts and check
// exact payments) must never overlap a challenge decided elsewhere; the challenge tests expect an
// empty pool (a report is out as soon as its challenge is decided); and the rewards tests mint
// into, pay from and forfeit to the platform's rewards pool, whose exact balance the inspector
// tests check; so do the provider stake tests, which slash node stakes into that pool.
import './challenges.ts';
import './challenge-reports.ts';
import './inspections.ts';
import './rewards.ts';
import './stakes.ts';
