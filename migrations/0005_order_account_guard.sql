-- An order row exists only for an active account: the order and its escrow hold are written in
-- one batch, so this refuses both for a suspended (or deleted) account without a separate read
-- of the account before the write. The route turns the error into 401/403.
CREATE TRIGGER `orders_account_active` BEFORE INSERT ON `orders`
WHEN (SELECT `status` FROM `accounts` WHERE `id` = NEW.`account_id`) IS NOT 'active'
BEGIN
  SELECT RAISE(ABORT, 'order_account_not_active');
END;
