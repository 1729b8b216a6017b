//! Leader election on a `coordination.k8s.io` Lease (kube-lease-manager), so that two replicas
//! of the operator are safe: only the holder of the lease reconciles; the other waits, and takes
//! over within the lease's duration when the holder dies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// What this process is, as `/readyz` tells it: alone (no election), standby or leader.
#[derive(Clone, Default)]
pub struct Role(Arc<AtomicU8>);

// 0, the default, is alone: no election, always reconciling.
const STANDBY: u8 = 1;
const LEADER: u8 = 2;

impl Role {
    fn set(&self, role: u8) {
        self.0.store(role, Ordering::SeqCst);
    }

    /// Another replica holds the lease.
    pub fn become_standby(&self) {
        self.set(STANDBY);
    }

    /// This replica holds the lease.
    pub fn become_leader(&self) {
        self.set(LEADER);
    }

    /// `Some(why)` while another replica holds the lease: this one is healthy but idle.
    pub fn standby(&self) -> Option<&'static str> {
        (self.0.load(Ordering::SeqCst) == STANDBY).then_some("standby: another replica holds the lease")
    }
}

/// Where the lease is and how long it holds.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    /// `None`: the client's namespace (the pod's own, in a cluster).
    pub namespace: Option<String>,
    /// A holder that has not renewed for this long loses the lease to the next candidate.
    pub duration: Duration,
}

/// A candidate for the lease, renewing it in the background once it holds it.
pub struct Election {
    leading: watch::Receiver<bool>,
    renewer: tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>>,
    role: Role,
}

impl Election {
    /// Join the election for `config`'s lease as this pod (`POD_NAME`), or a random identity.
    pub async fn join(client: Client, config: &LeaseConfig, role: Role) -> anyhow::Result<Self> {
        let namespace = config.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
        let duration = config.duration.as_secs().max(2);
        // Renew a third of the duration before it runs out: two renewals may fail in a row.
        let grace = (duration / 3).max(1);
        let mut builder = LeaseManagerBuilder::new(client, &config.name)
            .with_namespace(&namespace)
            .with_duration(duration)
            .with_grace(grace)
            .with_field_manager("trainloop-leader-election");
        if let Ok(pod) = std::env::var("POD_NAME") {
            builder = builder.with_identity(pod);
        }
        let manager =
            builder.build().await.with_context(|| format!("cannot use the lease {namespace}/{}", config.name))?;
        let (leading, renewer) = manager.watch().await;
        role.become_standby();
        Ok(Election { leading, renewer, role })
    }

    /// Resolve once this process holds the lease.
    pub async fn until_leading(&mut self) -> anyhow::Result<()> {
        self.leading.wait_for(|leading| *leading).await.context("the lease renewer stopped")?;
        self.role.become_leader();
        tracing::info!("holding the lease: reconciling");
        Ok(())
    }

    /// Resolve when this process has lost the lease (or can no longer tell).
    pub async fn until_lost(&mut self) {
        let _ = self.leading.wait_for(|leading| !*leading).await;
        self.role.become_standby();
    }

    /// Give the lease up, so that a standby takes over at once rather than when it expires.
    pub async fn resign(self) {
        drop(self.leading);
        match tokio::time::timeout(Duration::from_secs(5), self.renewer).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            outcome => tracing::warn!(?outcome, "the lease was not released: a standby takes over when it expires"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn a_replica_is_standby_only_while_another_holds_the_lease() {
        let role = Role::default();
        assert_eq!(role.standby(), None, "without an election");
        role.become_standby();
        assert!(role.standby().is_some());
        role.become_leader();
        assert_eq!(role.standby(), None);
    }
}
