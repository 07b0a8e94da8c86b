//! Accounts: people who log in (customers, agents, admins).

use sqlx::Row;

use super::outbox::NewEmail;
use super::rows::{self, USER_COLUMNS};
use super::{Store, StoreError, StoreResult, now_ms, unique_as};

/// A single-use token (only its hash is stored) and the email carrying it.
pub struct TokenEmail {
    pub token_hash: String,
    pub purpose: &'static str,
    pub expires_at: i64,
    pub email: NewEmail,
}
use crate::model::{Email, Role, User, UserId};

/// What [`Store::change_role_as`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Changed,
    /// The one changing it is not an admin (any more): nothing changed.
    ActorNotAdmin,
}

impl Store {
    pub async fn create_user(
        &self,
        email: &Email,
        name: &str,
        password_hash: &str,
        role: Role,
    ) -> StoreResult<User> {
        self.create_user_with(email, name, password_hash, role, None)
            .await
    }

    /// Creates a user and, in the same transaction, the single-use token
    /// and email that follow (verification, invitation).
    pub async fn create_user_with(
        &self,
        email: &Email,
        name: &str,
        password_hash: &str,
        role: Role,
        follow_up: Option<&TokenEmail>,
    ) -> StoreResult<User> {
        let (mut tx, _turn) = self.write_tx().await?;
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO users (email, name, password_hash, role, verified, created_at)
             VALUES (?, ?, ?, ?, 0, ?)",
            USER_COLUMNS,
        )))
        .bind(email.as_str())
        .bind(name)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms());
        let row = self
            .inserted_row(insert, "users", USER_COLUMNS, &mut tx)
            .await
            .map_err(|e| match e {
                StoreError::Database(e) => unique_as("email")(e),
                e => e,
            })?;
        let user = rows::user(&row)?;
        if let Some(follow_up) = follow_up {
            self.insert_token(&mut tx, user.id, follow_up).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// The user with this email and their password hash, for logging in.
    pub async fn user_with_hash(&self, email: &Email) -> StoreResult<Option<(User, String)>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?"
        )))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((rows::user(&row)?, row.try_get("password_hash")?)))
            .transpose()
    }

    pub async fn password_hash(&self, id: UserId) -> StoreResult<String> {
        let row = sqlx::query(self.sql("SELECT password_hash FROM users WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("password_hash")?)
    }

    pub async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query(self.sql(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?")))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(rows::user).transpose()?)
    }

    /// Agents and admins, by name: for assignment lists and the admin page.
    pub async fn staff(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE role IN ('agent', 'admin') ORDER BY name, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::user).collect::<Result<_, _>>()?)
    }

    /// Agents and admins with how many live chats each may hold at once.
    pub async fn staff_with_capacity(&self) -> StoreResult<Vec<(User, i64)>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {USER_COLUMNS}, capacity FROM users
             WHERE role IN ('agent', 'admin') ORDER BY name, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((rows::user(row)?, row.try_get("capacity")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Sets how many live chats a staff member may hold at once (routing
    /// stops assigning at that many). Not found unless the user is staff.
    pub async fn set_capacity(&self, id: UserId, capacity: i64) -> StoreResult<()> {
        let done = sqlx::query(
            self.sql("UPDATE users SET capacity = ? WHERE id = ? AND role IN ('agent', 'admin')"),
        )
        .bind(capacity)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn any_admin_exists(&self) -> StoreResult<bool> {
        let row = sqlx::query(self.sql("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'"))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Admin `actor` gives `target` a role, if `actor` is still an admin
    /// when it is written. Both rows are locked, in id order, first: two
    /// admins demoting each other at the same moment then take turns, and
    /// the second is no longer an admin, so an install keeps one.
    pub async fn change_role_as(
        &self,
        actor: UserId,
        target: UserId,
        role: Role,
    ) -> StoreResult<RoleChange> {
        let (mut tx, _turn) = self.write_tx().await?;
        // On SQLite the write transaction is the lock.
        let lock = self.backend.for_update();
        let rows = sqlx::query(self.sql(&format!(
            "SELECT id, role FROM users WHERE id IN (?, ?) ORDER BY id{lock}"
        )))
        .bind(actor.0)
        .bind(target.0)
        .fetch_all(&mut *tx)
        .await?;
        let role_of = |id: UserId| -> StoreResult<Option<String>> {
            for row in &rows {
                if row.try_get::<i64, _>("id")? == id.0 {
                    return Ok(Some(row.try_get("role")?));
                }
            }
            Ok(None)
        };
        if role_of(actor)?.as_deref() != Some(Role::Admin.as_str()) {
            tx.rollback().await?;
            return Ok(RoleChange::ActorNotAdmin);
        }
        if role_of(target)?.is_none() {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        sqlx::query(self.sql("UPDATE users SET role = ? WHERE id = ?"))
            .bind(role.as_str())
            .bind(target.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RoleChange::Changed)
    }

    pub async fn set_name(&self, id: UserId, name: &str) -> StoreResult<()> {
        sqlx::query(self.sql("UPDATE users SET name = ? WHERE id = ?"))
            .bind(name)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Changes the password and ends every session of that user except
    /// `keep_session` (the one that made the change, if any).
    pub async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        keep_session: Option<&str>,
    ) -> StoreResult<()> {
        let (mut tx, _turn) = self.write_tx().await?;
        sqlx::query(self.sql("UPDATE users SET password_hash = ? WHERE id = ?"))
            .bind(hash)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(self.sql("DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?"))
            .bind(id.0)
            .bind(keep_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn audit(
        &self,
        actor: Option<UserId>,
        action: &str,
        detail: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            self.sql(
                "INSERT INTO audit_log (at, actor_user_id, action, detail) VALUES (?, ?, ?, ?)",
            ),
        )
        .bind(now_ms())
        .bind(actor.map(|a| a.0))
        .bind(action)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest audit entries: (action, detail), newest first.
    pub async fn audit_entries(&self, limit: i64) -> StoreResult<Vec<(String, String)>> {
        let rows =
            sqlx::query(self.sql("SELECT action, detail FROM audit_log ORDER BY id DESC LIMIT ?"))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("action")?, r.try_get("detail")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

impl Store {
    /// Issues a single-use token and its email in one transaction.
    pub async fn issue_token(&self, user: UserId, token: &TokenEmail) -> StoreResult<()> {
        let (mut tx, _turn) = self.write_tx().await?;
        self.insert_token(&mut tx, user, token).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_token(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        user: UserId,
        token: &TokenEmail,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(&token.token_hash)
        .bind(user.0)
        .bind(token.purpose)
        .bind(token.expires_at)
        .execute(&mut **tx)
        .await?;
        self.insert_email(tx, &token.email).await
    }

    /// Uses a token once: the user it belongs to if it is unused, unexpired
    /// and for `purpose`. A second use finds nothing.
    pub async fn use_email_token(
        &self,
        token_hash: &str,
        purpose: &str,
    ) -> StoreResult<Option<UserId>> {
        let now = now_ms();
        let update = sqlx::query(self.sql(&self.backend.returning(
            "UPDATE email_tokens SET used_at = ?
             WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?",
            "user_id",
        )))
        .bind(now)
        .bind(token_hash)
        .bind(purpose)
        .bind(now);
        // Only the update that used the token matched it; whose it is
        // never changes, so reading it back needs no transaction.
        let read_back = || {
            sqlx::query(self.sql("SELECT user_id FROM email_tokens WHERE token_hash = ?"))
                .bind(token_hash)
        };
        let row = self
            .updated_row(update, read_back, &mut *self.pool.acquire().await?)
            .await?;
        Ok(row.map(|r| r.try_get("user_id").map(UserId)).transpose()?)
    }

    #[doc(hidden)]
    pub async fn expire_email_token(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query(self.sql("UPDATE email_tokens SET expires_at = ? WHERE token_hash = ?"))
            .bind(now_ms() - 1)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_verified(&self, user: UserId) -> StoreResult<()> {
        sqlx::query(self.sql("UPDATE users SET verified = 1 WHERE id = ?"))
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
