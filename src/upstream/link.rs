//! The upstream of a store opened with an upstream URL (`StoreOptions::upstream`): the
//! store's ordinary management calls (`Store::create`, `revoke`…) are made through it, so a
//! PHP, Python or Node application (C ABI `kw_options.upstream`) or the CLI (`--upstream`)
//! manages keys on a replica exactly as `Upstream`'s methods do.
//!
//! The connection is lazy: opening the store never touches the network (a worker opening its
//! store never waits on PostgreSQL, and verifies never use it). The first management call
//! connects (schema migrated, pepper and prefix checked, the store marked as a replica); a
//! call that finds the connection broken reconnects; a failed connect is retried by the next
//! call. Calls of one process are serialised on the one connection.

use postgres::Client;
use zeroize::Zeroizing;

use super::Upstream;
use crate::error::Result;
use crate::locks::Mutex;
use crate::store::Store;
use crate::sys::fork;

/// The upstream URL of a store and its connection, made on first use.
pub(crate) struct Link {
    url: Zeroizing<String>,
    /// The connection and the fork generation of the process that made it.
    client: Mutex<Option<(Client, u64)>>,
}

impl Link {
    /// Checks that `url` parses as a PostgreSQL connection string, with its TLS parameters
    /// (a root file named by `sslrootcert` is read; no connection is made).
    pub(crate) fn new(url: &str) -> Result<Link> {
        super::config(url)?;
        Ok(Link {
            url: Zeroizing::new(url.to_owned()),
            client: Mutex::new(None),
        })
    }

    /// Runs `call` on an [`Upstream`] of `store` over this link's connection (made first if
    /// there is none), then keeps the connection for the next call.
    pub(crate) fn with<T>(
        &self,
        store: &Store,
        call: impl FnOnce(&Upstream) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.client.lock();
        let upstream = match guard.take() {
            Some((client, generation)) if generation == fork::generation() => {
                Upstream::from_client(store, &self.url, client)
            }
            Some((inherited, _)) => {
                // Made by the parent before a fork: its runtime thread does not exist here,
                // and dropping it could touch the parent's socket. Leak it; connect anew.
                std::mem::forget(inherited);
                Upstream::connect(store, &self.url)?
            }
            None => Upstream::connect(store, &self.url)?,
        };
        let result = call(&upstream);
        *guard = upstream
            .into_client()
            .map(|client| (client, fork::generation()));
        result
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("Link").finish_non_exhaustive()
    }
}
