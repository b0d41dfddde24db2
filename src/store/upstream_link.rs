//! A store opened with an upstream URL (`StoreOptions::upstream`): its management calls are
//! made through the upstream PostgreSQL (`crate::upstream::Link`, feature `postgres`) instead
//! of the local file, exactly as `keyward::upstream::Upstream`'s methods make them. Without
//! the feature the option is refused at open ([`Error::UpstreamUnsupported`](crate::Error::UpstreamUnsupported)), so the calls
//! below are never reached.

// Without the feature the routed calls' arguments go nowhere (the `Link` cannot exist).
#![cfg_attr(not(feature = "postgres"), allow(unused_variables))]

use std::time::Duration;

use super::Store;
use super::engine::Engine;
use super::legacy::LegacyImportReport;
use super::manage::{CreatedKey, KeyUpdate, NewKey};
use super::owners::OwnerInfo;
use crate::error::Result;
use crate::legacy::LegacyScheme;
use crate::legacy::source::LegacyImportOptions;
use crate::rate_limit::RateLimit;
use crate::schema::{KeyInfo, META, META_UPSTREAM_CURSOR, u64_from_meta};

#[cfg(feature = "postgres")]
pub(crate) use crate::upstream::Link;

/// No upstream can be configured without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
#[derive(Debug)]
pub(crate) enum Link {}

/// The link for `url`, checked (no connection is made).
pub(super) fn from_option(url: Option<&str>) -> Result<Option<Link>> {
    let Some(url) = url else {
        return Ok(None);
    };
    #[cfg(feature = "postgres")]
    {
        Link::new(url).map(Some)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = url;
        Err(crate::error::Error::UpstreamUnsupported)
    }
}

/// `$link.with($store, |$u| $call)`; unreachable without the feature (`Link` is empty).
macro_rules! through {
    ($link:expr, $store:expr, |$u:ident| $call:expr) => {{
        #[cfg(feature = "postgres")]
        {
            $link.with($store, |$u| $call)
        }
        #[cfg(not(feature = "postgres"))]
        {
            match *$link {}
        }
    }};
}

impl Engine {
    /// The upstream cursor of a replica store (`None`: not a replica; see
    /// `Engine::refuse_on_replica`).
    pub(super) fn upstream_cursor(&self) -> Result<Option<u64>> {
        self.read(
            |txn| match txn.open_table(META)?.get(META_UPSTREAM_CURSOR)? {
                Some(v) => u64_from_meta(v.value()).map(Some),
                None => Ok(None),
            },
        )
    }
}

/// The management calls `Store` routes to its upstream.
impl Store {
    /// The upstream this store was opened with, if any.
    #[inline]
    pub(super) fn upstream_link(&self) -> Option<&Link> {
        self.handle.upstream.as_ref()
    }

    /// A store opened with an upstream is a replica from its first open (an upstream cursor
    /// of 0 in its meta table, written once, locally: no connection), so no management call
    /// is ever made on it locally, even before the first one connected.
    pub(super) fn marked_if_replica(self) -> Result<Store> {
        #[cfg(feature = "postgres")]
        if self.upstream_link().is_some() && self.engine()?.upstream_cursor()?.is_none() {
            self.mark_replica()?;
        }
        Ok(self)
    }

    pub(super) fn upstream_create(&self, link: &Link, new: NewKey) -> Result<CreatedKey> {
        through!(link, self, |u| u.create(new))
    }

    pub(super) fn upstream_create_many(
        &self,
        link: &Link,
        batch: Vec<NewKey>,
        action: &'static str,
    ) -> Result<Vec<CreatedKey>> {
        through!(link, self, |u| u.create_many_as(batch, action))
    }

    pub(super) fn upstream_update(
        &self,
        link: &Link,
        id: &str,
        update: KeyUpdate,
    ) -> Result<KeyInfo> {
        through!(link, self, |u| u.update(id, update))
    }

    pub(super) fn upstream_revoke(
        &self,
        link: &Link,
        id: &str,
        reason: Option<&str>,
    ) -> Result<KeyInfo> {
        through!(link, self, |u| u.revoke(id, reason))
    }

    pub(super) fn upstream_delete(&self, link: &Link, id: &str) -> Result<()> {
        through!(link, self, |u| u.delete(id))
    }

    pub(super) fn upstream_suspend_owner(
        &self,
        link: &Link,
        owner: &str,
        reason: Option<&str>,
    ) -> Result<OwnerInfo> {
        through!(link, self, |u| u.suspend_owner(owner, reason))
    }

    pub(super) fn upstream_resume_owner(&self, link: &Link, owner: &str) -> Result<OwnerInfo> {
        through!(link, self, |u| u.resume_owner(owner))
    }

    pub(super) fn upstream_set_owner_scopes(
        &self,
        link: &Link,
        owner: &str,
        scopes: Option<&[String]>,
    ) -> Result<OwnerInfo> {
        through!(link, self, |u| u.set_owner_scopes(owner, scopes))
    }

    pub(super) fn upstream_set_owner_rate_limit(
        &self,
        link: &Link,
        owner: &str,
        limit: Option<RateLimit>,
    ) -> Result<()> {
        through!(link, self, |u| u.set_owner_rate_limit(owner, limit))
    }

    pub(super) fn upstream_import_legacy(
        &self,
        link: &Link,
        scheme: LegacyScheme,
        data: &[u8],
        options: &LegacyImportOptions,
    ) -> Result<LegacyImportReport> {
        through!(link, self, |u| u.import_legacy(scheme, data, options))
    }

    pub(super) fn upstream_rotate(
        &self,
        link: &Link,
        id: &str,
        grace: Duration,
    ) -> Result<CreatedKey> {
        through!(link, self, |u| u.rotate(id, grace))
    }
}

#[cfg(all(test, not(feature = "postgres")))]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::store::StoreOptions;

    #[test]
    fn a_build_without_postgres_refuses_an_upstream_url_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.redb");
        let err = Store::open_unshared(
            &path,
            StoreOptions {
                upstream: Some("postgresql://db.internal/keyward".into()),
                ..StoreOptions::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::UpstreamUnsupported);
        assert_eq!(err.code().as_u32(), 73);
        assert!(
            err.to_string().contains("without PostgreSQL support"),
            "{err}"
        );
        assert!(!path.exists(), "nothing was created");
    }
}
