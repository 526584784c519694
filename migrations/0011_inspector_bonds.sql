CREATE TABLE `inspector_bonds` (
	`id` text PRIMARY KEY NOT NULL,
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
	CONSTRAINT "inspector_bonds_amount_positive" CHECK("inspector_bonds"."amount" > 0)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `inspector_bonds_key_uq` ON `inspector_bonds` (`account_id`,`kind`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `inspector_bonds_account_idx` ON `inspector_bonds` (`account_id`,`status`);--> statement-breakpoint
CREATE INDEX `inspector_bonds_due_idx` ON `inspector_bonds` (`status`,`release_at`);