//! The sandbox's deterministic dataset: customers, orders and stock levels.
//!
//! Generated from a seed with a small PRNG, so every run (and every test) sees the same
//! data: 5,000 customers, 50,000 orders and 2,000 SKUs. Every customer has at least one
//! order; order counts are skewed so that some customers have hundreds. The demo customer
//! (`cus_00001`) always has a long, varied order history.

use std::cmp::Reverse;
use std::collections::HashMap;

use switchyard_core::domain::{Customer, Order, OrderItem, OrderStatus, StockLevel, Tier};
use time::OffsetDateTime;

/// Id of the customer the launcher's ready-made token signs in as.
pub const DEMO_CUSTOMER_ID: &str = "cus_00001";
/// Number of generated customers.
pub const CUSTOMER_COUNT: usize = 5_000;
/// Number of generated SKUs.
pub const SKU_COUNT: usize = 2_000;
/// Number of generated orders.
pub const ORDER_COUNT: usize = 50_000;
/// Default seed of the dataset.
pub const DEFAULT_SEED: u64 = 20_260_101;
/// Orders the demo customer always has.
const DEMO_ORDER_COUNT: usize = 42;
/// 2026-01-01T00:00:00Z: the dataset's fixed "now", so that data does not drift with time.
const EPOCH_END: i64 = 1_767_225_600;
/// Two years of history before it.
const HISTORY_SECS: i64 = 2 * 365 * 24 * 3600;

/// SplitMix64: tiny, fast, and good enough for test data.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Barbara",
    "Edsger",
    "Frances",
    "Donald",
    "Margaret",
    "Ken",
    "Radia",
    "Dennis",
    "Hedy",
    "Linus",
    "Sophie",
    "Tim",
    "Katherine",
    "John",
    "Joan",
    "Niklaus",
    "Adele",
    "Leslie",
    "Shafi",
    "Bjarne",
    "Anita",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Allen",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Ritchie",
    "Lamarr",
    "Torvalds",
    "Wilson",
    "Berners-Lee",
    "Johnson",
    "McCarthy",
    "Clarke",
    "Wirth",
    "Goldberg",
    "Lamport",
    "Goldwasser",
    "Stroustrup",
    "Borg",
];
const ADJECTIVES: &[&str] = &[
    "Compact",
    "Rugged",
    "Smart",
    "Classic",
    "Wireless",
    "Ergonomic",
    "Solar",
    "Modular",
    "Silent",
    "Premium",
];
const PRODUCTS: &[&str] = &[
    "Shelf Scanner",
    "Kitchen Scale",
    "Desk Lamp",
    "Thermostat",
    "Headphones",
    "Backpack",
    "Water Bottle",
    "Keyboard",
    "Drill",
    "Router",
    "Camera",
    "Kettle",
    "Monitor Arm",
    "Label Printer",
    "Door Sensor",
    "Toolbox",
    "Power Bank",
    "Coffee Grinder",
    "Tent",
    "Bicycle Light",
];
const CURRENCIES: &[&str] = &["EUR", "EUR", "EUR", "USD", "GBP"];

/// Everything the simulated services serve, with the indexes they need.
pub struct Dataset {
    /// Customers in id order.
    pub customers: Vec<Customer>,
    /// Orders, newest first (created_at desc, id desc): the order every listing uses.
    pub orders: Vec<Order>,
    /// Stock levels in SKU order.
    pub stock: Vec<StockLevel>,
    customer_by_id: HashMap<String, usize>,
    order_by_id: HashMap<String, usize>,
    stock_by_sku: HashMap<String, usize>,
    /// Per customer, indexes into `orders` (so also newest first).
    orders_by_customer: HashMap<String, Vec<usize>>,
}

fn timestamp(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("dataset timestamps are in range")
}

/// `cus_00042`-style id for a 0-based index.
pub fn customer_id(index: usize) -> String {
    format!("cus_{:05}", index + 1)
}

/// `SKU-00042`-style id for a 0-based index.
pub fn sku_id(index: usize) -> String {
    format!("SKU-{:05}", index + 1)
}

impl Dataset {
    /// Generates the dataset for `seed`.
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let customers: Vec<Customer> = (0..CUSTOMER_COUNT)
            .map(|i| generate_customer(&mut rng, i))
            .collect();
        let (stock, prices): (Vec<StockLevel>, Vec<i64>) =
            (0..SKU_COUNT).map(|i| generate_stock(&mut rng, i)).unzip();

        // Every customer gets one order; the rest go to a skewed pick of customers
        // (u³ concentrates them on low indexes), and the demo customer gets a fixed share.
        let mut owners: Vec<usize> = (0..CUSTOMER_COUNT).collect();
        owners.extend(std::iter::repeat_n(0, DEMO_ORDER_COUNT - 1));
        while owners.len() < ORDER_COUNT {
            let u = rng.unit();
            let owner = 1 + ((u * u * u) * (CUSTOMER_COUNT - 1) as f64) as usize;
            owners.push(owner.min(CUSTOMER_COUNT - 1));
        }
        let mut orders: Vec<Order> = owners
            .iter()
            .enumerate()
            .map(|(n, &owner)| generate_order(&mut rng, n, &customers[owner], &prices))
            .collect();
        orders.sort_by(|a, b| {
            (Reverse(a.created_at), Reverse(&a.id)).cmp(&(Reverse(b.created_at), Reverse(&b.id)))
        });

        let mut orders_by_customer: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, order) in orders.iter().enumerate() {
            orders_by_customer
                .entry(order.customer_id.clone())
                .or_default()
                .push(index);
        }
        Self {
            customer_by_id: index_by(&customers, |c| &c.id),
            order_by_id: index_by(&orders, |o| &o.id),
            stock_by_sku: index_by(&stock, |s| &s.sku),
            customers,
            orders,
            stock,
            orders_by_customer,
        }
    }

    /// A customer by id.
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customer_by_id.get(id).map(|&i| &self.customers[i])
    }

    /// An order by id.
    pub fn order(&self, id: &str) -> Option<&Order> {
        self.order_by_id.get(id).map(|&i| &self.orders[i])
    }

    /// Position of an order in the newest-first listing.
    pub fn order_position(&self, id: &str) -> Option<usize> {
        self.order_by_id.get(id).copied()
    }

    /// A stock level by SKU.
    pub fn stock_level(&self, sku: &str) -> Option<&StockLevel> {
        self.stock_by_sku.get(sku).map(|&i| &self.stock[i])
    }

    /// Positions (newest first) of a customer's orders; empty for unknown customers.
    pub fn orders_of(&self, customer_id: &str) -> &[usize] {
        self.orders_by_customer
            .get(customer_id)
            .map_or(&[], Vec::as_slice)
    }
}

fn index_by<T>(items: &[T], key: impl Fn(&T) -> &String) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (key(item).clone(), i))
        .collect()
}

fn generate_customer(rng: &mut Rng, index: usize) -> Customer {
    let id = customer_id(index);
    let first = rng.pick(FIRST_NAMES);
    let last = rng.pick(LAST_NAMES);
    let tier = match rng.below(10) {
        0..=5 => Tier::Free,
        6..=8 => Tier::Pro,
        _ => Tier::Enterprise,
    };
    Customer {
        name: format!("{first} {last}"),
        email: format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            index + 1
        ),
        phone: format!("+1 555 01{:02} {:04}", rng.below(100), rng.below(10_000)),
        tier,
        avatar_url: format!("https://avatars.example.com/{id}.png"),
        avatar_thumb_url: format!("https://avatars.example.com/{id}_64.png"),
        created_at: timestamp(EPOCH_END - HISTORY_SECS - rng.below(365 * 24 * 3600) as i64),
        id,
    }
}

fn generate_stock(rng: &mut Rng, index: usize) -> (StockLevel, i64) {
    // A tenth of SKUs are sold out and another tenth run low, so stock badges vary.
    let available = match rng.below(10) {
        0 => 0,
        1 => 1 + rng.below(9) as i64,
        _ => 10 + rng.below(490) as i64,
    };
    let level = StockLevel {
        sku: sku_id(index),
        name: format!("{} {}", rng.pick(ADJECTIVES), rng.pick(PRODUCTS)),
        available,
        reserved: rng.below(20) as i64,
        warehouse_id: format!("wh-{}", 1 + rng.below(5)),
        updated_at: timestamp(EPOCH_END - rng.below(30 * 24 * 3600) as i64),
    };
    let price = 199 + rng.below(49_800) as i64;
    (level, price)
}

fn generate_order(rng: &mut Rng, n: usize, customer: &Customer, prices: &[i64]) -> Order {
    let item_count = 1 + rng.below(5) as usize;
    let items: Vec<OrderItem> = (0..item_count)
        .map(|_| {
            let sku = rng.below(SKU_COUNT as u64) as usize;
            OrderItem {
                sku: sku_id(sku),
                quantity: 1 + rng.below(4) as u32,
                unit_price_cents: prices[sku],
            }
        })
        .collect();
    let total_cents = items
        .iter()
        .map(|item| item.unit_price_cents * i64::from(item.quantity))
        .sum();
    let age = rng.below(HISTORY_SECS as u64) as i64;
    let created = EPOCH_END - age;
    // Older orders are further along; a few of every age are cancelled.
    let status = if rng.below(20) == 0 {
        OrderStatus::Cancelled
    } else {
        match age {
            a if a < 2 * 24 * 3600 => OrderStatus::Pending,
            a if a < 5 * 24 * 3600 => OrderStatus::Paid,
            a if a < 12 * 24 * 3600 => OrderStatus::Shipped,
            _ => OrderStatus::Delivered,
        }
    };
    let updated = (created + rng.below(7 * 24 * 3600) as i64).min(EPOCH_END);
    let currency_index = customer.id.bytes().map(u64::from).sum::<u64>() as usize;
    Order {
        id: format!("ord_{:06}", n + 1),
        customer_id: customer.id.clone(),
        status,
        items,
        total_cents,
        currency: CURRENCIES[currency_index % CURRENCIES.len()].to_owned(),
        created_at: timestamp(created),
        updated_at: timestamp(updated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_is_deterministic_and_as_large_as_promised() {
        let a = Dataset::generate(DEFAULT_SEED);
        let b = Dataset::generate(DEFAULT_SEED);
        assert_eq!(a.orders.len(), ORDER_COUNT);
        assert_eq!(a.customers.len(), CUSTOMER_COUNT);
        assert_eq!(a.stock.len(), SKU_COUNT);
        assert_eq!(a.orders[..50], b.orders[..50]);
        assert!(a.customers.iter().all(|c| !a.orders_of(&c.id).is_empty()));
        assert!(a.orders_of(DEMO_CUSTOMER_ID).len() >= DEMO_ORDER_COUNT);
        let busiest = a.customers.iter().map(|c| a.orders_of(&c.id).len()).max();
        assert!(
            busiest.is_some_and(|n| n >= 100),
            "some customers have many orders"
        );
    }
}
