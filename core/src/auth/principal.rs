//! Who is calling and what they may do.

use std::borrow::Cow;

use crate::domain::{Customer, Tier};

use super::error::AuthError;

/// A permission carried in a token's `scope` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read orders.
    OrdersRead,
    /// Read customers.
    CustomersRead,
    /// Read stock levels.
    InventoryRead,
    /// Post stock readings (devices).
    InventoryWrite,
    /// See e-mail and phone unmasked.
    CustomersPii,
    /// See any customer's data, not only one's own.
    Admin,
}

impl Scope {
    /// Every scope Switchyard knows.
    pub const ALL: [Self; 6] = [
        Self::OrdersRead,
        Self::CustomersRead,
        Self::InventoryRead,
        Self::InventoryWrite,
        Self::CustomersPii,
        Self::Admin,
    ];

    /// The spelling in the `scope` claim, e.g. `data:orders:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrdersRead => "data:orders:read",
            Self::CustomersRead => "data:customers:read",
            Self::InventoryRead => "data:inventory:read",
            Self::InventoryWrite => "data:inventory:write",
            Self::CustomersPii => "data:customers:pii",
            Self::Admin => "data:admin",
        }
    }

    /// The scope spelled `name` in a `scope` claim, if Switchyard knows it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// An authenticated consumer: a customer, a service, or a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: a customer id for customers, a device id for devices.
    pub subject: String,
    scopes: u8,
    /// Commercial tier from the `tier` claim (`free` when absent).
    pub tier: Tier,
    /// The OAuth client the token was issued to, if it says.
    pub client_id: Option<String>,
    /// When the credential stops being valid (the token's `exp`, Unix seconds); `None`
    /// for credentials that do not expire (API keys).
    expires_at: Option<u64>,
}

impl Principal {
    /// A principal with the known scopes among `scopes` (unknown ones are ignored).
    pub fn new<'a>(
        subject: String,
        scopes: impl IntoIterator<Item = &'a str>,
        tier: Tier,
        client_id: Option<String>,
    ) -> Self {
        let scopes = scopes
            .into_iter()
            .filter_map(Scope::parse)
            .fold(0, |bits, scope| bits | scope.bit());
        Self {
            subject,
            scopes,
            tier,
            client_id,
            expires_at: None,
        }
    }

    /// The same principal, valid until `exp` (Unix seconds).
    pub fn with_expiry(mut self, exp: u64) -> Self {
        self.expires_at = Some(exp);
        self
    }

    /// When the credential expires (Unix seconds), if it does: long-lived streams end then.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// Whether the token grants `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes & scope.bit() != 0
    }

    /// `Ok` when the token grants `scope`, else a 403-class error naming it.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope(scope.as_str()))
        }
    }

    /// The scopes granted, in [`Scope::ALL`] order.
    pub fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL.into_iter().filter(|scope| self.has(*scope))
    }

    /// Whether this consumer may see customer `customer_id`'s data: its own, or any with
    /// `data:admin`.
    pub fn may_access_customer(&self, customer_id: &str) -> bool {
        self.has(Scope::Admin) || self.subject == customer_id
    }

    /// Whether e-mail and phone are shown unmasked.
    pub fn sees_pii(&self) -> bool {
        self.has(Scope::CustomersPii)
    }

    /// `customer`'s e-mail as this consumer may see it (masked without `data:customers:pii`).
    pub fn visible_email<'a>(&self, customer: &'a Customer) -> Cow<'a, str> {
        if self.sees_pii() {
            Cow::Borrowed(&customer.email)
        } else {
            Cow::Owned(mask_email(&customer.email))
        }
    }

    /// `customer`'s phone as this consumer may see it (masked without `data:customers:pii`).
    pub fn visible_phone<'a>(&self, customer: &'a Customer) -> Cow<'a, str> {
        if self.sees_pii() {
            Cow::Borrowed(&customer.phone)
        } else {
            Cow::Owned(mask_phone(&customer.phone))
        }
    }
}

/// `jane@example.com` → `j***@example.com`; an address without `@` is masked whole.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `+1 555 0100 1234` → `+* *** **** **34`: every digit but the last two hidden.
pub fn mask_phone(phone: &str) -> String {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    phone
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 2 > digits { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scopes_are_ignored_and_known_ones_kept() {
        let p = Principal::new(
            "cus_1".into(),
            ["data:orders:read", "openid", "data:admin"],
            Tier::Pro,
            None,
        );
        assert!(p.has(Scope::OrdersRead));
        assert!(p.has(Scope::Admin));
        assert!(!p.has(Scope::CustomersPii));
        assert_eq!(p.scopes().count(), 2);
        assert_eq!(
            p.require(Scope::InventoryRead),
            Err(AuthError::InsufficientScope("data:inventory:read"))
        );
    }

    #[test]
    fn pii_masks_keep_only_a_hint() {
        assert_eq!(mask_email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask_email("nonsense"), "***");
        assert_eq!(mask_phone("+1 555-0100"), "+* ***-**00");
    }
}
