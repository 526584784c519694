CREATE TABLE `chain_transfers` (
	`id` text PRIMARY KEY NOT NULL,
	`chain` text NOT NULL,
	`tx_hash` text NOT NULL,
	`log_index` integer NOT NULL,
	`asset` text NOT NULL,
	`amount` integer NOT NULL,
	`to_address` text NOT NULL,
	`memo` text NOT NULL,
	`account_id` text,
	`confirmations` integer NOT NULL,
	`status` text NOT NULL,
	`deposit_id` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `chain_transfers_uq` ON `chain_transfers` (`chain`,`tx_hash`,`log_index`);--> statement-breakpoint
CREATE TABLE `deposits` (
	`id` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`idempotency_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`asset` text NOT NULL,
	`method` text NOT NULL,
	`amount` integer NOT NULL,
	`credited_amount` integer,
	`status` text DEFAULT 'pending' NOT NULL,
	`external_ref` text,
	`checkout_url` text,
	`transaction_id` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`credited_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `deposits_key_uq` ON `deposits` (`account_id`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `deposits_account_idx` ON `deposits` (`account_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `deposits_external_idx` ON `deposits` (`external_ref`);--> statement-breakpoint
CREATE TABLE `ledger_accounts` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`asset` text NOT NULL,
	`kind` text NOT NULL,
	`allow_negative` integer DEFAULT false NOT NULL,
	`balance` integer DEFAULT 0 NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	CONSTRAINT "ledger_balance_non_negative" CHECK("ledger_accounts"."balance" >= 0 OR "ledger_accounts"."allow_negative" = 1)
);
--> statement-breakpoint
CREATE INDEX `ledger_accounts_owner_idx` ON `ledger_accounts` (`owner_id`);--> statement-breakpoint
CREATE TABLE `ledger_entries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`transaction_id` text NOT NULL,
	`account_id` text NOT NULL,
	`owner_id` text NOT NULL,
	`account_kind` text NOT NULL,
	`asset` text NOT NULL,
	`amount` integer NOT NULL,
	`balance_after` integer NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `ledger_entries_owner_idx` ON `ledger_entries` (`owner_id`,`id`);--> statement-breakpoint
CREATE INDEX `ledger_entries_transaction_idx` ON `ledger_entries` (`transaction_id`);--> statement-breakpoint
CREATE TABLE `ledger_transactions` (
	`id` text PRIMARY KEY NOT NULL,
	`idempotency_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`kind` text NOT NULL,
	`reference` text,
	`reverses` text,
	`memo` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `ledger_transactions_key_uq` ON `ledger_transactions` (`idempotency_key`);--> statement-breakpoint
CREATE UNIQUE INDEX `ledger_transactions_reverses_uq` ON `ledger_transactions` (`reverses`);--> statement-breakpoint
CREATE INDEX `ledger_transactions_reference_idx` ON `ledger_transactions` (`reference`);--> statement-breakpoint
CREATE TABLE `webhook_events` (
	`source` text NOT NULL,
	`event_id` text NOT NULL,
	`type` text NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `webhook_events_uq` ON `webhook_events` (`source`,`event_id`);--> statement-breakpoint
CREATE TABLE `withdrawals` (
	`id` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`idempotency_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`asset` text NOT NULL,
	`amount` integer NOT NULL,
	`destination` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`failure_reason` text,
	`payout_ref` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`settled_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `withdrawals_key_uq` ON `withdrawals` (`account_id`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `withdrawals_account_idx` ON `withdrawals` (`account_id`,`created_at`);