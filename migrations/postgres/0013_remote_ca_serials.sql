-- A remote CA (CFSSL) chooses the serial of the certificate it signs. The intent is recorded
-- before the CA is called with a serial Vouch reserves; when the CA's certificate is accepted, the
-- intent's `serial` becomes the certificate's (certificates.serial references it) in the
-- transaction that stores the certificate, and the serial first reserved stays here: the intent
-- keeps its identity (request_id, unique) and its idempotency key. NULL for intents recorded
-- before this migration and for intents the embedded CA completes (the serials are the same).
ALTER TABLE issuance_intents ADD COLUMN reserved_serial TEXT;
