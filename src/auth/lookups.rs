//! One API token's lookups, in line: at most one asks the store at a time, and
//! the requests that arrive while it does share the next one. Each request is
//! still answered by a lookup that began after it arrived, so a token revoked
//! before a request is refused to it exactly as if it had asked alone; what is
//! saved is the store's work when many requests carry the same token at once
//! (one lookup a round trip instead of one a request).

use std::sync::{Arc, Mutex, Weak};

use futures::FutureExt as _;

use crate::domain::{Caller, Error, TokenAnswer};

/// The line of one token's lookups. Cloned, it is the same line.
#[derive(Clone, Default)]
pub struct Lookups {
    /// The lookup that has not yet asked the store, which arriving requests join. A lookup is
    /// put here only when it is empty, and takes itself out when its turn comes, so whatever a
    /// lookup finds here then is itself.
    open: Arc<Mutex<Option<TokenAnswer>>>,
    /// Held by the lookup that is asking the store.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Lookups {
    /// The lookup a request arriving now joins: the open one, or else a new one, which `ask`
    /// makes when its turn comes. Nothing asks the store until a joiner awaits the lookup.
    pub fn join<F, A>(&self, ask: A) -> TokenAnswer
    where
        A: FnOnce() -> F + Send + 'static,
        F: Future<Output = Result<Caller, Arc<Error>>> + Send + 'static,
    {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lookup) = open.as_ref() {
            return lookup.clone();
        }
        // The open slot holds the lookup, so the lookup holds the slot weakly: a line dropped
        // with a lookup nobody ran is freed whole.
        let (slot, turn) = (Arc::downgrade(&self.open), Arc::clone(&self.turn));
        let lookup = async move {
            let _turn = turn.lock().await;
            // Closed before it asks: whoever arrives from now on waits for the next lookup.
            if let Some(slot) = Weak::upgrade(&slot) {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            ask().await
        }
        .boxed()
        .shared();
        *open = Some(lookup.clone());
        lookup
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Member, Role};
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    fn member(subject: &str) -> Caller {
        Caller::Member(Member { organisation: "kc".into(), role: Role::Editor, subject: subject.into() })
    }

    type Asking = BoxFuture<'static, Result<Caller, Arc<Error>>>;

    /// A lookup that counts itself, then answers with what the test sends it.
    fn asked(count: &Arc<AtomicUsize>) -> (impl FnOnce() -> Asking + Send + 'static, oneshot::Sender<Caller>) {
        let (send, receive) = oneshot::channel();
        let count = Arc::clone(count);
        let ask = move || {
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(receive.await.expect("the test answers"))
            }
            .boxed()
        };
        (ask, send)
    }

    #[tokio::test]
    async fn a_request_arriving_during_a_lookup_waits_for_the_next_and_shares_it() {
        let line = Lookups::default();
        let count = Arc::new(AtomicUsize::new(0));

        let (ask, answer_first) = asked(&count);
        let first = tokio::spawn(line.join(ask));
        // Let the first lookup take its turn and ask.
        while count.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }

        // Two requests arrive while it asks: they join one new lookup, not the running one.
        let (ask, answer_second) = asked(&count);
        let second = tokio::spawn(line.join(ask));
        let (unused, _) = asked(&count);
        let third = tokio::spawn(line.join(unused));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(count.load(Ordering::SeqCst), 1, "the next lookup waits for the running one");

        // The running lookup's answer goes to the request that was there before it began.
        answer_first.send(member("token:before")).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), member("token:before"));
        while count.load(Ordering::SeqCst) == 1 {
            tokio::task::yield_now().await;
        }
        answer_second.send(member("token:after")).unwrap();
        assert_eq!(second.await.unwrap().unwrap(), member("token:after"));
        assert_eq!(third.await.unwrap().unwrap(), member("token:after"));
        assert_eq!(count.load(Ordering::SeqCst), 2, "two lookups for three requests");

        // With nothing in flight, a request opens a lookup of its own.
        let (ask, answer_fourth) = asked(&count);
        let fourth = line.join(ask);
        answer_fourth.send(member("token:later")).unwrap();
        assert_eq!(fourth.await.unwrap(), member("token:later"));
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_lookup_nobody_awaits_asks_nothing_and_the_next_arrival_runs_it() {
        let line = Lookups::default();
        let count = Arc::new(AtomicUsize::new(0));
        let (ask, answer) = asked(&count);
        let ignored = line.join(ask);
        tokio::task::yield_now().await;
        assert_eq!(count.load(Ordering::SeqCst), 0, "nothing is asked before a joiner awaits");

        let (unused, _) = asked(&count);
        let joined = line.join(unused);
        assert!(joined.ptr_eq(&ignored), "an arrival joins the lookup still open");
        answer.send(member("token:one")).unwrap();
        assert_eq!(joined.await.unwrap(), member("token:one"));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        drop(ignored);
    }
}
