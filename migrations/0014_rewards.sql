CREATE TABLE `reward_epochs` (
	`epoch` integer PRIMARY KEY NOT NULL,
	`status` text DEFAULT 'computing' NOT NULL,
	`emission` integer,
	`inspector_pay` integer,
	`taper_ppm` integer,
	`utilisation_ppm` integer,
	`providers_emission` integer,
	`paid` integer,
	`returned` integer,
	`lines` integer,
	`inputs_hash` text,
	`cursor` text,
	`started_at` integer NOT NULL,
	`closed_at` integer
);
--> statement-breakpoint
CREATE TABLE `reward_lines` (
	`epoch` integer NOT NULL,
	`node_id` text NOT NULL,
	`owner_id` text NOT NULL,
	`gpu_model` text,
	`gpus_offered` integer NOT NULL,
	`confirmed_s` integer NOT NULL,
	`leased_gpu_s` integer NOT NULL,
	`verified` integer NOT NULL,
	`stake` integer DEFAULT 0 NOT NULL,
	`eligible` integer,
	`weight` integer,
	`amount` integer,
	`immediate` integer,
	`vesting` integer,
	`released` integer DEFAULT 0 NOT NULL,
	`forfeited` integer DEFAULT 0 NOT NULL,
	`transaction_id` text,
	`paid_at` integer,
	`released_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `reward_lines_pk` ON `reward_lines` (`epoch`,`node_id`);--> statement-breakpoint
CREATE INDEX `reward_lines_owner_idx` ON `reward_lines` (`owner_id`,`epoch`);--> statement-breakpoint
CREATE INDEX `reward_lines_vesting_idx` ON `reward_lines` (`released_at`) WHERE vesting > released + forfeited AND paid_at IS NOT NULL;