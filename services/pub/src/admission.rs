//! A call PUB let through, remembered by its connection: a keep-alive client calling the same
//! endpoint with the same token again (the usual case) is let through without hashing its token
//! or touching the shared caches. The memory holds only while the shared entries it came from
//! would (their TTL, no invalidation since), so it never outlives what it was based on.

use std::sync::Arc;
use std::time::Instant;

use crate::access::{Decision, Route};
use crate::path::FatmanCall;

pub struct Admission {
    pub route: Arc<Route>,
    /// `None`: no caller needed (public endpoint, probe, auth off).
    pub decision: Option<Arc<Decision>>,
    name: String,
    version: String,
    rest: String,
    token: Option<Box<str>>,
    /// `Access::generation` when the entries were read.
    generation: u64,
    expires: Instant,
}

impl Admission {
    pub fn new(
        call: &FatmanCall,
        token: Option<&str>,
        route: Arc<Route>,
        decision: Option<Arc<Decision>>,
        generation: u64,
        expires: Instant,
    ) -> Admission {
        Admission {
            route,
            decision,
            name: call.name.clone(),
            version: call.version.clone(),
            rest: call.rest.clone(),
            token: token.map(Box::from),
            generation,
            expires,
        }
    }

    /// Whether this admission covers `call` by `token` now.
    pub fn covers(&self, call: &FatmanCall, token: Option<&str>, generation: u64) -> bool {
        self.generation == generation
            && self.rest == call.rest
            && self.name == call.name
            && self.version == call.version
            && self.token.as_deref() == token
            && Instant::now() < self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call(rest: &str) -> FatmanCall {
        FatmanCall {
            name: "adder".into(),
            version: "latest".into(),
            rest: rest.into(),
        }
    }

    fn route() -> Arc<Route> {
        Arc::new(Route::for_tests(&crate::metrics::PubMetrics::new(), 1))
    }

    #[test]
    fn covers_only_the_same_call_token_and_generation_in_time() {
        let later = Instant::now() + Duration::from_secs(60);
        let a = Admission::new(&call("/x"), Some("t"), route(), None, 7, later);
        assert!(a.covers(&call("/x"), Some("t"), 7));
        assert!(!a.covers(&call("/y"), Some("t"), 7));
        assert!(!a.covers(&call("/x"), Some("u"), 7));
        assert!(!a.covers(&call("/x"), None, 7));
        assert!(!a.covers(&call("/x"), Some("t"), 8), "invalidated since");
        let past = Admission::new(&call("/x"), Some("t"), route(), None, 7, Instant::now());
        assert!(!past.covers(&call("/x"), Some("t"), 7), "expired");
    }
}
