DROP INDEX `leases_node_idx`;--> statement-breakpoint
CREATE INDEX `leases_node_idx` ON `leases` (`node_id`,`state`);