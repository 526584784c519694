CREATE TABLE `node_challenges` (
	`id` text PRIMARY KEY NOT NULL,
	`node_id` text NOT NULL,
	`kind` text NOT NULL,
	`challenge` text NOT NULL,
	`status` text DEFAULT 'issued' NOT NULL,
	`issued_at` integer NOT NULL,
	`deadline` integer NOT NULL,
	`commitment` text,
	`commitment_signature` text,
	`open_seed` text,
	`opening_request` text,
	`open_deadline` integer,
	`answer` text,
	`answer_signature` text,
	`reasons` text,
	`decision` text,
	`decided_at` integer
);
--> statement-breakpoint
CREATE INDEX `node_challenges_node_idx` ON `node_challenges` (`node_id`,`issued_at`);--> statement-breakpoint
CREATE INDEX `node_challenges_open_idx` ON `node_challenges` (`deadline`) WHERE status IN ('issued', 'committed');--> statement-breakpoint
ALTER TABLE `nodes` ADD `verified_at` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `verified_until` integer;