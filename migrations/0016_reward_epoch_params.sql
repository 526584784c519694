ALTER TABLE `reward_epochs` ADD `scheduled_emission` integer;--> statement-breakpoint
ALTER TABLE `reward_epochs` ADD `pool_balance` integer;--> statement-breakpoint
ALTER TABLE `reward_epochs` ADD `params` text;