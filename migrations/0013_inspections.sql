CREATE TABLE `inspection_assignments` (
	`inspection_id` text NOT NULL,
	`account_id` text NOT NULL,
	`weight` integer NOT NULL,
	`commitment` text,
	`committed_at` integer,
	`verdict` text,
	`salt` text,
	`signature` text,
	`public_key` text,
	`revealed_at` integer,
	`result` text,
	`amount` integer,
	`transaction_id` text,
	`settled_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `inspection_assignments_pk` ON `inspection_assignments` (`inspection_id`,`account_id`);--> statement-breakpoint
CREATE INDEX `inspection_assignments_account_idx` ON `inspection_assignments` (`account_id`,`settled_at`);--> statement-breakpoint
CREATE TABLE `inspections` (
	`id` text PRIMARY KEY NOT NULL,
	`challenge_id` text,
	`node_id` text NOT NULL,
	`kind` text NOT NULL,
	`decoy` integer DEFAULT false NOT NULL,
	`expect` text,
	`transcript` text NOT NULL,
	`draw` text NOT NULL,
	`status` text DEFAULT 'open' NOT NULL,
	`commit_deadline` integer NOT NULL,
	`reveal_deadline` integer NOT NULL,
	`outcome` text,
	`basis` text,
	`majority` text,
	`reasons` text,
	`created_at` integer NOT NULL,
	`decided_at` integer,
	`settled_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `inspections_challenge_uq` ON `inspections` (`challenge_id`) WHERE challenge_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX `inspections_node_idx` ON `inspections` (`node_id`,`decided_at`);--> statement-breakpoint
CREATE INDEX `inspections_open_idx` ON `inspections` (`reveal_deadline`) WHERE status = 'open';--> statement-breakpoint
CREATE INDEX `inspections_unsettled_idx` ON `inspections` (`decided_at`) WHERE status = 'decided' AND settled_at IS NULL;--> statement-breakpoint
CREATE TABLE `inspector_keys` (
	`account_id` text PRIMARY KEY NOT NULL,
	`public_key` text NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `inspector_keys_key_uq` ON `inspector_keys` (`public_key`);