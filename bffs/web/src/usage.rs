//! Usage plans for GraphQL: an operation costs `max(1, ceil(complexity / cost_per_unit))`
//! units, charged once it has validated (so its complexity is known) and before it
//! executes (so a refused operation costs the upstreams nothing). A batch pays the sum,
//! one operation at a time.
//!
//! The charge is an async-graphql extension on the validation step. The handler gives
//! each operation a [`Charge`] (the limiter and where to record the decision; the principal
//! is the operation's `RequestData`'s), then reads the decisions back to set `RateLimit-Policy`, `RateLimit` and,
//! when refused, 429 with `Retry-After`.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{Pos, ServerError, ValidationResult};
use switchyard_core::ErrorCode;
use switchyard_core::ratelimit::{Decision, Limiter};

use crate::errors::graphql_error;
use crate::schema::RequestData;

/// The decisions of one HTTP request's operations, in the order they were charged.
#[derive(Clone, Default)]
pub(crate) struct Decisions(Arc<Mutex<Vec<Decision>>>);

impl Decisions {
    fn push(&self, decision: Decision) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(decision);
    }

    /// The decisions made, leaving none behind.
    pub(crate) fn take(&self) -> Vec<Decision> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What an operation is charged to: request data of every operation when plans apply.
pub(crate) struct Charge {
    pub(crate) limiter: Limiter,
    pub(crate) cost_per_unit: usize,
    pub(crate) decisions: Decisions,
}

impl Charge {
    /// Charges an operation of `complexity` to `principal` and records the decision; a
    /// refusal is the `RATE_LIMITED` error the operation answers with instead.
    pub(crate) async fn charge(
        &self,
        principal: &switchyard_core::auth::Principal,
        complexity: usize,
    ) -> Result<(), ServerError> {
        let cost = units(complexity, self.cost_per_unit);
        let decision = self.limiter.charge(principal, cost).await;
        let allowed = decision.allowed;
        let message = decision
            .message
            .clone()
            .unwrap_or_else(|| "rate limit exceeded".to_owned());
        self.decisions.push(decision);
        if allowed {
            Ok(())
        } else {
            Err(graphql_error(ErrorCode::RateLimited, message).into_server_error(Pos::default()))
        }
    }
}

/// The units of an operation of `complexity`.
pub(crate) fn units(complexity: usize, cost_per_unit: usize) -> u32 {
    let units = complexity.div_ceil(cost_per_unit.max(1)).max(1);
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// The extension factory installed on the schema.
pub(crate) struct UsagePlan;

impl ExtensionFactory for UsagePlan {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(UsagePlanCharge)
    }
}

struct UsagePlanCharge;

#[async_trait::async_trait]
impl Extension for UsagePlanCharge {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let (Some(charge), Some(request)) =
            (ctx.data_opt::<Charge>(), ctx.data_opt::<RequestData>())
        else {
            return Ok(result);
        };
        match charge.charge(&request.principal, result.complexity).await {
            Ok(()) => Ok(result),
            Err(refused) => Err(vec![refused]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_costs_its_complexity_in_units_of_cost_per_unit_and_at_least_one() {
        assert_eq!(units(0, 100), 1);
        assert_eq!(units(100, 100), 1);
        assert_eq!(units(101, 100), 2);
        assert_eq!(units(1_500, 100), 15);
    }
}
