//! Domain types decoded from the upstream services' JSON (schema/upstreams.openapi.yaml).
//!
//! These are what aggregation works with and returns; each BFF converts them into its own
//! wire types. Decoding is strict about types (a malformed upstream body is an error, not a
//! half-filled struct) but tolerant of extra fields, so upstreams can add fields freely.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A customer of the shop, as the customers service describes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Customer {
    /// Stable customer id; a customer's own tokens carry it as `sub`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail address (PII).
    pub email: String,
    /// Phone number (PII).
    pub phone: String,
    /// Commercial tier.
    pub tier: Tier,
    /// Full-size avatar.
    pub avatar_url: String,
    /// Small avatar, for lists and mobile.
    pub avatar_thumb_url: String,
    /// When the customer signed up.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Commercial tier of a customer or consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Free plan.
    Free,
    /// Paid plan.
    Pro,
    /// Contracted plan.
    Enterprise,
}

impl Tier {
    /// The wire spelling (`free`, `pro`, `enterprise`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "free" => Some(Self::Free),
            "pro" => Some(Self::Pro),
            "enterprise" => Some(Self::Enterprise),
            _ => None,
        }
    }
}

/// Lifecycle state of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Placed, not paid.
    Pending,
    /// Paid, not shipped.
    Paid,
    /// Handed to the carrier.
    Shipped,
    /// Arrived.
    Delivered,
    /// Cancelled before delivery.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Paid,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    /// The wire spelling used by the orders service (`pending`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An order and its line items.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    /// Stable order id.
    pub id: String,
    /// The customer who placed it.
    pub customer_id: String,
    /// Lifecycle state.
    pub status: OrderStatus,
    /// Line items, in the order they were added.
    pub items: Vec<OrderItem>,
    /// Sum of the items, in minor units of `currency`.
    pub total_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// When it was placed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Order {
    /// The order's total as [`Money`].
    pub fn total(&self) -> Money {
        Money::new(self.total_cents, &self.currency)
    }

    /// Total number of units across all items.
    pub fn item_count(&self) -> u64 {
        self.items.iter().map(|item| u64::from(item.quantity)).sum()
    }
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderItem {
    /// Stock-keeping unit.
    pub sku: String,
    /// Units ordered.
    pub quantity: u32,
    /// Price of one unit, in minor units of the order's currency.
    pub unit_price_cents: i64,
}

/// Stock of one SKU, as the inventory service reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StockLevel {
    /// Stock-keeping unit.
    pub sku: String,
    /// Product name.
    pub name: String,
    /// Units that can be sold now.
    pub available: i64,
    /// Units held for unshipped orders.
    pub reserved: i64,
    /// Warehouse holding the stock.
    pub warehouse_id: String,
    /// When the level last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Stock counts observed by one device, as `POST /inventory/readings` takes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingsBatch {
    /// The device that observed them.
    pub device_id: String,
    /// The warehouse it is in.
    pub warehouse_id: String,
    /// The observations, in the device's order.
    pub readings: Vec<Reading>,
}

/// One observed stock count: after it, `sku` has `quantity` units available.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// Stock-keeping unit.
    pub sku: String,
    /// Units counted.
    pub quantity: i64,
    /// When they were counted.
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
}

/// The inventory service's answer to a batch of readings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingsAck {
    /// Readings applied.
    pub accepted: u32,
    /// Readings refused, by index in the batch.
    pub rejected: Vec<RejectedReading>,
}

/// A reading the inventory service refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedReading {
    /// Position in the batch.
    pub index: u32,
    /// Why, e.g. `unknown_sku`.
    pub reason: String,
}

/// An amount of money in integer minor units (cents), never floating point.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in minor units of `currency`.
    pub minor_units: i64,
    /// ISO 4217 currency code.
    pub currency: String,
}

impl Money {
    /// Money of `minor_units` in `currency`.
    pub fn new(minor_units: i64, currency: &str) -> Self {
        Self {
            minor_units,
            currency: currency.to_owned(),
        }
    }

    /// Display form for clients that do not format money themselves, e.g. `€1,234.50`.
    ///
    /// Every currency is rendered with two decimals; the sandbox only uses such currencies.
    pub fn formatted(&self) -> String {
        let symbol = match self.currency.as_str() {
            "EUR" => "€",
            "USD" => "$",
            "GBP" => "£",
            _ => "",
        };
        let sign = if self.minor_units < 0 { "-" } else { "" };
        let abs = self.minor_units.unsigned_abs();
        let (major, minor) = (abs / 100, abs % 100);
        let digits = major.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        if symbol.is_empty() {
            format!("{sign}{grouped}.{minor:02} {}", self.currency)
        } else {
            format!("{sign}{symbol}{grouped}.{minor:02}")
        }
    }
}

/// One page of a cursor-paginated list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_with_grouping_and_two_decimals() {
        assert_eq!(Money::new(123_450, "EUR").formatted(), "€1,234.50");
        assert_eq!(Money::new(5, "USD").formatted(), "$0.05");
        assert_eq!(
            Money::new(-100_000_000, "GBP").formatted(),
            "-£1,000,000.00"
        );
        assert_eq!(Money::new(199, "CHF").formatted(), "1.99 CHF");
    }

    #[test]
    fn orders_decode_from_upstream_json() {
        let json = r#"{"id":"ord_1","customer_id":"cus_1","status":"shipped",
            "items":[{"sku":"SKU-1","quantity":2,"unit_price_cents":500}],
            "total_cents":1000,"currency":"EUR","created_at":"2026-01-02T03:04:05Z",
            "updated_at":"2026-01-03T03:04:05Z","unknown_extra":true}"#;
        let order: Order = serde_json::from_str(json).expect("valid order");
        assert_eq!(order.status, OrderStatus::Shipped);
        assert_eq!(order.item_count(), 2);
        assert_eq!(order.total().formatted(), "€10.00");
    }
}
