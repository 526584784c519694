CREATE TABLE `leases` (
	`id` text PRIMARY KEY NOT NULL,
	`trade_id` text NOT NULL,
	`bid_id` text NOT NULL,
	`ask_id` text NOT NULL,
	`renter_id` text NOT NULL,
	`provider_id` text NOT NULL,
	`node_id` text NOT NULL,
	`region` text NOT NULL,
	`gpu_model` text NOT NULL,
	`gpus` integer NOT NULL,
	`gpu_indices` text NOT NULL,
	`price` integer NOT NULL,
	`duration_s` integer NOT NULL,
	`asset` text NOT NULL,
	`amount` integer NOT NULL,
	`state` text NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `leases_trade_uq` ON `leases` (`trade_id`);--> statement-breakpoint
CREATE INDEX `leases_renter_idx` ON `leases` (`renter_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `leases_provider_idx` ON `leases` (`provider_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `leases_node_idx` ON `leases` (`node_id`);--> statement-breakpoint
CREATE TABLE `orders` (
	`id` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`idempotency_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`side` text NOT NULL,
	`region` text NOT NULL,
	`gpu_model` text NOT NULL,
	`gpus` integer NOT NULL,
	`price` integer NOT NULL,
	`tif` text NOT NULL,
	`duration_s` integer,
	`pay_with` text,
	`hold_amount` integer,
	`min_reliability_ppm` integer,
	`verified_only` integer,
	`workload` text,
	`node_id` text,
	`min_duration_s` integer,
	`max_duration_s` integer,
	`book` text NOT NULL,
	`status` text DEFAULT 'open' NOT NULL,
	`expires_at` integer NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`closed_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `orders_key_uq` ON `orders` (`account_id`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `orders_account_idx` ON `orders` (`account_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `orders_account_status_idx` ON `orders` (`account_id`,`status`,`created_at`);--> statement-breakpoint
CREATE INDEX `orders_book_idx` ON `orders` (`region`,`gpu_model`);--> statement-breakpoint
CREATE INDEX `orders_node_idx` ON `orders` (`node_id`,`status`);