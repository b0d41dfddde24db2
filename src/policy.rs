//! Per-store policies, checked on every management call.

use std::time::Duration;

/// Rules a store enforces on key management.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// Most active (not revoked, not expired) keys one owner may hold; `None` = unlimited.
    pub max_active_keys_per_owner: Option<u32>,
    /// Refuse to revoke or delete an owner's last active key.
    pub keep_last_key: bool,
    /// Longest lifetime a key may be given; when set, every key must have an expiry.
    pub max_lifetime: Option<Duration>,
}
