CREATE TABLE `heartbeat_batches` (
	`id` text PRIMARY KEY NOT NULL,
	`heartbeats` integer NOT NULL,
	`processed_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `join_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`hash` text NOT NULL,
	`account_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	`node_id` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `join_tokens_hash_unique` ON `join_tokens` (`hash`);--> statement-breakpoint
CREATE TABLE `node_gpus` (
	`node_id` text NOT NULL,
	`gpu_index` integer NOT NULL,
	`uuid` text NOT NULL,
	`name` text NOT NULL,
	`model` text,
	`memory_mib` integer NOT NULL,
	`driver` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_gpus_pk` ON `node_gpus` (`node_id`,`gpu_index`);--> statement-breakpoint
CREATE INDEX `node_gpus_uuid_idx` ON `node_gpus` (`uuid`);--> statement-breakpoint
CREATE TABLE `node_metrics_minute` (
	`node_id` text NOT NULL,
	`minute` integer NOT NULL,
	`heartbeats` integer NOT NULL,
	`util_sum` real NOT NULL,
	`util_samples` integer NOT NULL,
	`mem_used_max_mib` integer,
	`temp_max_c` real,
	`power_sum_w` real NOT NULL,
	`power_samples` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_metrics_minute_pk` ON `node_metrics_minute` (`node_id`,`minute`);--> statement-breakpoint
CREATE TABLE `node_uptime_daily` (
	`node_id` text NOT NULL,
	`day` text NOT NULL,
	`seconds` integer NOT NULL,
	`heartbeats` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_uptime_daily_pk` ON `node_uptime_daily` (`node_id`,`day`);--> statement-breakpoint
CREATE TABLE `nodes` (
	`id` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`region` text NOT NULL,
	`hostname` text NOT NULL,
	`machine` text NOT NULL,
	`status` text DEFAULT 'registered' NOT NULL,
	`token_version` integer DEFAULT 1 NOT NULL,
	`reliability_ppm` integer DEFAULT 900000 NOT NULL,
	`verified` integer DEFAULT false NOT NULL,
	`last_heartbeat_at` integer,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `nodes_account_idx` ON `nodes` (`account_id`,`created_at`);