//! Admission: a provisioned sandbox first, else the account's concurrency
//! limit, then the function's reserved concurrency or the unreserved pool
//! (spec 3.5; provisioned concurrency of unreserved functions is already
//! out of that pool, `InvokeRequest::total_reserved_concurrency`). An [`Admission`] is held
//! for the whole invocation and gives its place back when dropped.

use super::live::LiveSandbox;
use super::{Inner, State};
use crate::error::ApiError;
use crate::invoker::InvokeRequest;
use std::sync::Arc;

/// Released when the invocation ends, however it ends.
pub(super) struct Admission {
    inner: Arc<Inner>,
    function: String,
    /// Outside the unreserved pool: the function's reserved concurrency or
    /// a provisioned sandbox.
    reserved: bool,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.in_flight -= 1;
        if !self.reserved {
            st.unreserved_in_flight -= 1;
        }
        if let Some(n) = st.per_function.get_mut(&self.function) {
            *n -= 1;
            if *n == 0 {
                st.per_function.remove(&self.function);
            }
        }
    }
}

impl Inner {
    /// An idle provisioned sandbox of the pool when there is one: its
    /// concurrency was set aside with the configuration, so the
    /// invocation is counted but never throttled. Otherwise the account
    /// limit, then reserved or unreserved concurrency (spec 3.5).
    pub(super) fn admit(
        self: &Arc<Self>,
        req: &InvokeRequest,
        pool_key: &str,
    ) -> Result<(Admission, Option<LiveSandbox>), ApiError> {
        let function = &req.function.name;
        let limit = self.config.concurrency_limit;
        let mut st = self.lock();
        if let Some(w) = st.take_provisioned(pool_key) {
            return Ok((self.admitted(&mut st, function, true), Some(w)));
        }
        let running = st.per_function.get(function).copied().unwrap_or(0);
        let reason = if st.in_flight >= limit {
            Some("ConcurrentInvocationLimitExceeded")
        } else {
            match req.reserved_concurrency {
                Some(r) if running >= r => Some("ReservedFunctionConcurrentInvocationLimitExceeded"),
                Some(_) => None,
                None => {
                    let unreserved = u64::from(limit).saturating_sub(req.total_reserved_concurrency);
                    (u64::from(st.unreserved_in_flight) >= unreserved).then_some("ConcurrentInvocationLimitExceeded")
                }
            }
        };
        if let Some(reason) = reason {
            drop(st);
            self.metrics.throttle(function);
            return Err(ApiError::Throttled { reason });
        }
        let reserved = req.reserved_concurrency.is_some();
        Ok((self.admitted(&mut st, function, reserved), None))
    }

    /// Counts the invocation in; `reserved`: outside the unreserved pool.
    fn admitted(self: &Arc<Self>, st: &mut State, function: &str, reserved: bool) -> Admission {
        st.in_flight += 1;
        if !reserved {
            st.unreserved_in_flight += 1;
        }
        *st.per_function.entry(function.to_owned()).or_default() += 1;
        Admission {
            inner: Arc::clone(self),
            function: function.to_owned(),
            reserved,
        }
    }
}
