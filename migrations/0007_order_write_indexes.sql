DROP INDEX `orders_book_idx`;--> statement-breakpoint
DROP INDEX `orders_node_idx`;--> statement-breakpoint
CREATE INDEX `orders_node_idx` ON `orders` (`node_id`,`status`) WHERE side = 'sell';--> statement-breakpoint
DROP INDEX `ledger_transactions_reverses_uq`;--> statement-breakpoint
CREATE UNIQUE INDEX `ledger_transactions_reverses_uq` ON `ledger_transactions` (`reverses`) WHERE reverses IS NOT NULL;