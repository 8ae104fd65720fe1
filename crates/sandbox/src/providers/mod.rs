//! The four simulated providers, one module each. Every module exposes
//! `routes()` (its endpoints), `authenticated(app, headers)` (whether a
//! request carries the account's credentials, for rate limiting),
//! `error(status)` (its error body for a status), `throttled(throttle)` (its
//! 429 answer, headers included) and a `Data` set of generated records; this
//! module wires them to the shared interceptor, the 404 / 405 fallbacks and
//! fault injection.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;

use crate::limits::Throttle;
use crate::state::{AppState, Shared, intercept};

pub(crate) mod aircall;
pub(crate) mod ccai;
pub(crate) mod chorus;
pub(crate) mod clari;

/// One simulated provider; the discriminant is its index in [`crate::PROVIDER_IDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    Chorus = 0,
    Aircall = 1,
    CcaiPlatform = 2,
    ClariCopilot = 3,
}

impl Provider {
    pub(crate) const ALL: [Provider; 4] = [
        Provider::Chorus,
        Provider::Aircall,
        Provider::CcaiPlatform,
        Provider::ClariCopilot,
    ];

    pub(crate) fn id(self) -> &'static str {
        crate::PROVIDER_IDS[self.index()]
    }

    pub(crate) fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.id() == id)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The complete axum app of this provider.
    pub(crate) fn app(self, shared: Arc<Shared>) -> Router {
        let state = AppState {
            shared,
            provider: self,
        };
        let routes = match self {
            Provider::Chorus => chorus::routes(),
            Provider::Aircall => aircall::routes(),
            Provider::CcaiPlatform => ccai::routes(),
            Provider::ClariCopilot => clari::routes(),
        };
        routes
            .method_not_allowed_fallback(method_not_allowed)
            .fallback(not_found)
            // `layer` (not `route_layer`): also in front of the fallbacks, so
            // every request is recorded and subject to fault injection.
            .layer(from_fn_with_state(state.clone(), intercept))
            .with_state(state)
    }

    /// Whether the request carries this provider's working credentials.
    pub(crate) fn authenticated(self, app: &AppState, headers: &HeaderMap) -> bool {
        match self {
            Provider::Chorus => chorus::authenticated(app, headers),
            Provider::Aircall => aircall::rejection(app, headers).is_none(),
            Provider::CcaiPlatform => ccai::rejection(app, headers).is_none(),
            Provider::ClariCopilot => clari::rejection(app, headers).is_none(),
        }
    }

    /// This provider's 429 for `throttle`, with its rate-limit headers.
    pub(crate) fn throttled(self, throttle: &Throttle) -> Response {
        match self {
            Provider::Chorus => chorus::throttled(),
            Provider::Aircall => aircall::throttled(throttle),
            Provider::CcaiPlatform => ccai::throttled(throttle),
            Provider::ClariCopilot => clari::throttled(throttle),
        }
    }

    /// This provider's error answer for a raw status (invalid codes → 500).
    pub(crate) fn error_for(self, status: u16) -> Response {
        self.error(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
    }

    /// This provider's error answer for `status`.
    pub(crate) fn error(self, status: StatusCode) -> Response {
        match self {
            Provider::Chorus => chorus::error(status),
            Provider::Aircall => aircall::error(status),
            Provider::CcaiPlatform => ccai::error(status),
            Provider::ClariCopilot => clari::error(status),
        }
    }

    /// The answer to every request while a status is forced. An invalid status
    /// code (outside 100..=999) is answered as 500.
    /// A forced 429 looks like a full short window of the configured limit.
    pub(crate) fn forced_response(self, status: u16, shared: &Shared) -> Response {
        if status != 429 {
            return self.error_for(status);
        }
        self.throttled(&shared.forced_throttle(self))
    }
}

async fn not_found(State(app): State<AppState>) -> Response {
    app.provider.error(StatusCode::NOT_FOUND)
}

async fn method_not_allowed(State(app): State<AppState>) -> Response {
    app.provider.error(StatusCode::METHOD_NOT_ALLOWED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_in_catalog_order() {
        for (i, id) in crate::PROVIDER_IDS.iter().enumerate() {
            let p = Provider::from_id(id).unwrap();
            assert_eq!(p.index(), i);
            assert_eq!(p.id(), *id);
        }
        assert_eq!(Provider::from_id("custom"), None);
    }
}
