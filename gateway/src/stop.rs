//! The stop signal shared by the gateway's tasks.

use tokio::sync::watch;

/// Resolves once `true` has been sent, or when the sender is gone.
///
/// Cancel safety: dropping the future loses nothing; calling it again waits again.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
