CREATE TABLE `gpu_metrics_minute` (
	`node_id` text NOT NULL,
	`minute` integer NOT NULL,
	`gpu_index` integer NOT NULL,
	`samples` integer NOT NULL,
	`util_sum` real NOT NULL,
	`util_samples` integer NOT NULL,
	`mem_max_mib` integer,
	`temp_max_c` real,
	`power_sum_w` real NOT NULL,
	`power_samples` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `gpu_metrics_minute_pk` ON `gpu_metrics_minute` (`node_id`,`minute`,`gpu_index`);