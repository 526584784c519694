ALTER TABLE `node_challenges` ADD `openings` text;--> statement-breakpoint
ALTER TABLE `node_challenges` ADD `node_public_key` text;