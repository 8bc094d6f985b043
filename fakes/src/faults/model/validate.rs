//! The checks serde cannot express, run after a fault is read: ranges of every kind's fields,
//! ids, the probability rules, and which target fields a kind understands.

use super::error::FieldError;
use super::fault::Fault;
use super::kinds::{Disconnect, FaultKind, Scope};
use super::target::Service;
use super::{MAX_DELAY_MS, MAX_SECONDS};

/// Ids the control API uses as path segments of its own.
const RESERVED_IDS: &[&str] = &["seed"];

impl FaultKind {
    fn validate(&self) -> Result<(), FieldError> {
        match self {
            Self::Latency(l) => l.delay.validate("delay"),
            Self::Error(e) => check_error_status("status", e.status),
            Self::Outage(o) => check_error_status("status", o.status),
            Self::Hang(h) => {
                if !h.hold_s.is_finite() || h.hold_s <= 0.0 || h.hold_s > MAX_DELAY_MS / 1000.0 {
                    return Err(FieldError::new(
                        "hold_s",
                        format!("must be > 0 and ≤ 3600 seconds, got {}", h.hold_s),
                    ));
                }
                check_error_status("status", h.status)
            }
            Self::DropNotification(_) => Ok(()),
            Self::DelayNotification(d) => d.delay.validate("delay"),
            Self::DuplicateNotification(d) => {
                if (1..=10).contains(&d.copies) {
                    Ok(())
                } else {
                    Err(FieldError::new(
                        "copies",
                        format!("must be between 1 and 10, got {}", d.copies),
                    ))
                }
            }
            Self::Disconnect(d) => {
                if !valid_close_code(d.close_code) {
                    return Err(FieldError::new(
                        "close_code",
                        format!(
                            "{} cannot be sent in a close frame; use 1000–1003, 1007–1014 or 3000–4999",
                            d.close_code
                        ),
                    ));
                }
                match d.per_minute {
                    Some(rate) if !rate.is_finite() || rate <= 0.0 => Err(FieldError::new(
                        "per_minute",
                        format!("must be > 0, got {rate}"),
                    )),
                    _ => Ok(()),
                }
            }
            Self::ClaimOutcome(c) => {
                for (name, rate) in [
                    ("not_found", c.not_found),
                    ("conflict", c.conflict),
                    ("not_ready", c.not_ready),
                    ("unreachable", c.unreachable),
                ] {
                    check_rate(name, rate)?;
                }
                let total = c.total();
                if total > 1.0 + 1e-9 {
                    return Err(FieldError::new(
                        "not_found",
                        format!(
                            "not_found + conflict + not_ready + unreachable must be at most 1, got {total}"
                        ),
                    ));
                }
                if total <= 0.0 {
                    return Err(FieldError::new(
                        "not_found",
                        "at least one of not_found, conflict, not_ready, unreachable must be > 0",
                    ));
                }
                if c.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    return Err(FieldError::new("region", "must not be empty"));
                }
                Ok(())
            }
            Self::RegionCapacity(r) => {
                if r.region.trim().is_empty() {
                    return Err(FieldError::new("region", "must not be empty"));
                }
                Ok(())
            }
            Self::ReadyDelay(r) => match (&r.delay, r.never) {
                (Some(_), true) => Err(FieldError::new(
                    "never",
                    "give either delay or never = true, not both",
                )),
                (None, false) => Err(FieldError::new(
                    "delay",
                    "missing: give a delay distribution or never = true",
                )),
                (Some(delay), false) => delay.validate("delay"),
                (None, true) => Ok(()),
            },
            Self::TokenExpiry(t) => {
                let range = 1..=MAX_SECONDS;
                if !range.contains(&t.access_s) {
                    return Err(FieldError::new(
                        "access_s",
                        format!("must be between 1 and {MAX_SECONDS} seconds"),
                    ));
                }
                if t.refresh_s.is_some_and(|r| !range.contains(&r)) {
                    return Err(FieldError::new(
                        "refresh_s",
                        format!("must be between 1 and {MAX_SECONDS} seconds"),
                    ));
                }
                Ok(())
            }
            Self::RevokeUser(r) => {
                if r.user_id.trim().is_empty() {
                    return Err(FieldError::new("user_id", "must not be empty"));
                }
                Ok(())
            }
            Self::JwksRotation(j) => match j.every_s {
                Some(every) if !every.is_finite() || every < 1.0 => Err(FieldError::new(
                    "every_s",
                    format!("must be at least 1 second, got {every}"),
                )),
                _ => Ok(()),
            },
            Self::TicketExpiry(t) => {
                if t.after_s > MAX_SECONDS {
                    return Err(FieldError::new(
                        "after_s",
                        format!("must be at most {MAX_SECONDS} seconds"),
                    ));
                }
                if t.pool.as_ref().is_some_and(|p| p.trim().is_empty()) {
                    return Err(FieldError::new("pool", "must not be empty"));
                }
                Ok(())
            }
        }
    }
}

fn check_error_status(field: &str, status: u16) -> Result<(), FieldError> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be an error status (400–599), got {status}"),
        ))
    }
}

fn check_rate(field: &str, rate: f64) -> Result<(), FieldError> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be between 0 and 1, got {rate}"),
        ))
    }
}

/// Close codes a server may put in a close frame (RFC 6455 section 7.4).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Fault {
    /// [`Fault::validate`] for a fault built in code: a probability of 1 counts as not given.
    pub fn check(&self) -> Result<(), FieldError> {
        self.validate(self.probability != 1.0)
    }

    /// Checks everything serde cannot: ranges, ids, and the target fields the kind uses.
    /// `probability_given`: whether the input set `probability` (some kinds refuse it).
    pub fn validate(&self, probability_given: bool) -> Result<(), FieldError> {
        check_id(&self.id)?;
        check_rate("probability", self.probability)?;
        if probability_given && self.kind.probability_must_be_one() && self.probability != 1.0 {
            return Err(FieldError::new(
                "probability",
                format!(
                    "{} always applies while active; leave probability out (or 1)",
                    self.kind.name()
                ),
            ));
        }
        if let FaultKind::Disconnect(Disconnect {
            per_minute: Some(_),
            ..
        }) = self.kind
        {
            if probability_given {
                return Err(FieldError::new(
                    "probability",
                    "give either per_minute or probability, not both",
                ));
            }
        }
        if let Some(window) = &self.window {
            window.validate()?;
        }
        self.validate_target()?;
        self.kind.validate()
    }

    fn validate_target(&self) -> Result<(), FieldError> {
        let t = &self.target;
        let scope = self.kind.scope();
        let name = self.kind.name();
        let refuse = |field: &str| {
            Err(FieldError::new(
                format!("target.{field}"),
                format!("not used by kind {name}"),
            ))
        };
        let http = scope == Scope::Http;
        let lobby = matches!(scope, Scope::Notification | Scope::Socket);
        let own_service = match scope {
            Scope::Http => None,
            Scope::Notification | Scope::Socket => Some(Service::Lobby),
            Scope::Dsmc => Some(Service::Dsmc),
            Scope::Iam => Some(Service::Iam),
            Scope::Match2 => Some(Service::Match2),
        };
        if let (Some(service), Some(own)) = (t.service, own_service) {
            if service != own {
                return Err(FieldError::new(
                    "target.service",
                    format!("kind {name} acts on {own}, not {service}"),
                ));
            }
        }
        if !http {
            if t.route.is_some() {
                return refuse("route");
            }
            if t.method.is_some() {
                return refuse("method");
            }
        }
        if scope != Scope::Notification {
            if t.topic.is_some() {
                return refuse("topic");
            }
            if t.message_type.is_some() {
                return refuse("message_type");
            }
        }
        if !lobby && t.user_id.is_some() {
            return refuse("user_id");
        }
        if let Some(route) = &t.route {
            if !route.starts_with('/') {
                return Err(FieldError::new(
                    "target.route",
                    format!("must start with /, got {route:?}"),
                ));
            }
        }
        if let Some(method) = &t.method {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(FieldError::new(
                    "target.method",
                    format!("must be an HTTP method such as GET or POST, got {method:?}"),
                ));
            }
        }
        Ok(())
    }
}

fn check_id(id: &str) -> Result<(), FieldError> {
    if id.is_empty() {
        return Ok(());
    }
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(FieldError::new(
            "id",
            format!("must be 1–64 letters, digits, '-', '_' or '.', got {id:?}"),
        ));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(FieldError::new("id", format!("{id:?} is reserved")));
    }
    Ok(())
}
