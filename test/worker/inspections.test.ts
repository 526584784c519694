// Every test that decides a node challenge, in one file so that they run one after another: a
// decided challenge draws its inspectors from every bonded account with a key in the shared
// database, so the inspector tests (which register such accounts and check exact payments) must
// never overlap a challenge decided elsewhere, and the challenge tests expect an empty pool (a
// report is out as soon as its challenge is decided).
import './challenges.ts';
import './challenge-reports.ts';
import './inspections.ts';
