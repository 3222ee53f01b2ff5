//! Admission: the account's concurrency limit, then the function's reserved
//! concurrency or the unreserved pool (spec 3.5). An [`Admission`] is held
//! for the whole invocation and gives its place back when dropped.

use super::Inner;
use crate::error::ApiError;
use crate::invoker::InvokeRequest;
use std::sync::Arc;

/// Released when the invocation ends, however it ends.
pub(super) struct Admission {
    inner: Arc<Inner>,
    function: String,
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
    /// Account limit, then reserved or unreserved concurrency (spec 3.5).
    pub(super) fn admit(self: &Arc<Self>, req: &InvokeRequest) -> Result<Admission, ApiError> {
        let function = &req.function.name;
        let limit = self.config.concurrency_limit;
        let mut st = self.lock();
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
        st.in_flight += 1;
        let reserved = req.reserved_concurrency.is_some();
        if !reserved {
            st.unreserved_in_flight += 1;
        }
        *st.per_function.entry(function.clone()).or_default() += 1;
        Ok(Admission {
            inner: Arc::clone(self),
            function: function.clone(),
            reserved,
        })
    }
}
