CREATE TABLE `job_cursors` (
	`name` text PRIMARY KEY NOT NULL,
	`at` integer NOT NULL,
	`id` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `orders_open_created_idx` ON `orders` (`created_at`,`id`) WHERE status = 'open';