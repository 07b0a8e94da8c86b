//! Leases: work that one instance does at a time (reading the support
//! mailbox). A lease is held until it expires; its holder renews it while
//! it works, and an instance that dies simply stops renewing, so another
//! takes over within one lifetime. Nothing relies on a lease alone for
//! correctness: what it guards is also idempotent (an email is taken once
//! by its key), the lease only keeps instances from doing it twice.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

impl Store {
    /// Takes the lease `name` for `holder` until `lifetime_ms` from now, or
    /// renews it if `holder` has it; `false` while another holder's lease
    /// runs.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        lifetime_ms: i64,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let now = now_ms();
        let until = now + lifetime_ms;
        // Two instances racing for an expired lease: the row lock makes the
        // second re-read the first one's holder, and its WHERE fails.
        sqlx::query(self.sql(
            "UPDATE leases SET holder = ?, expires_at = ?
             WHERE name = ? AND (holder = ? OR expires_at <= ?)",
        ))
        .bind(holder)
        .bind(until)
        .bind(name)
        .bind(holder)
        .bind(now)
        .execute(&self.pool)
        .await?;
        // The first time there is no row: made here (or by a racer).
        sqlx::query(self.sql(&self.backend.upsert(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)",
            &["name"],
            &[],
        )))
        .bind(name)
        .bind(holder)
        .bind(until)
        .execute(&self.pool)
        .await?;
        // Read back rather than trust a row count: MariaDB counts an
        // UPDATE that changed nothing as no row.
        let row = sqlx::query(self.sql("SELECT holder, expires_at FROM leases WHERE name = ?"))
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<String, _>("holder")? == holder
            && row.try_get::<i64, _>("expires_at")? == until)
    }

    /// Gives the lease up at once (a holder that stops working it), so that
    /// another instance need not wait for it to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql("DELETE FROM leases WHERE name = ? AND holder = ?"))
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
