CREATE TABLE `node_stakes` (
	`id` text PRIMARY KEY NOT NULL,
	`node_id` text NOT NULL,
	`account_id` text NOT NULL,
	`kind` text NOT NULL,
	`idempotency_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`amount` integer NOT NULL,
	`status` text NOT NULL,
	`release_at` integer,
	`released_at` integer,
	`transaction_id` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	CONSTRAINT "node_stakes_amount_positive" CHECK("node_stakes"."amount" > 0)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_stakes_key_uq` ON `node_stakes` (`account_id`,`kind`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `node_stakes_node_idx` ON `node_stakes` (`node_id`,`kind`,`created_at`);--> statement-breakpoint
CREATE INDEX `node_stakes_due_idx` ON `node_stakes` (`status`,`release_at`);