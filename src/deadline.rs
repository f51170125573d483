//! A deadline that is armed only when it is needed. Most requests finish in
//! their first poll (a body that came with its headers, an introspection
//! answered from the cache): for those a timer is registered in Tokio's
//! wheel and removed again a moment later, for nothing. [`within`] polls
//! the work once first, and arms the deadline only if it must wait.
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// `future`'s output, or `Err` if it did not finish within `limit` of its
/// first poll.
pub async fn within<F: Future>(
    limit: Duration,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut future = pin!(future);
    // The first poll's result is not held across the wait below (it would
    // make the future's Send depend on the output's).
    if let Poll::Ready(output) =
        std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
    {
        return Ok(output);
    }
    tokio::time::timeout(limit, future).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_done_at_once_needs_no_timer_and_slow_work_is_cut_off() {
        assert_eq!(within(Duration::ZERO, async { 7 }).await, Ok(7));
        let slow = within(
            Duration::from_millis(20),
            tokio::time::sleep(Duration::from_secs(60)),
        );
        assert!(slow.await.is_err());
        let waits_a_little = within(Duration::from_secs(60), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            "done"
        });
        assert_eq!(waits_a_little.await, Ok("done"));
    }
}
