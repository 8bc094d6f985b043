//! AccelByte IAM permission semantics: resource patterns and action bitmasks.
//!
//! A permission is a `:`-separated resource pattern (for example
//! `NAMESPACE:{namespace}:USER:{userId}:NOTIFICATION`) plus a CRUD bitmask.
//! The emulator enforces permissions on its endpoints and the matchmaker
//! checks them when validating tokens; both must decide exactly as the real
//! validator SDKs do (`resourceAllowed` / `actionAllowed` in AccelByte's
//! iam-go-sdk `permission.go`), so the rule lives here once.

/// Action bits of a permission (`15` grants everything).
pub mod action {
    /// Create (`1`).
    pub const CREATE: u32 = 1;
    /// Read (`2`).
    pub const READ: u32 = 2;
    /// Update (`4`).
    pub const UPDATE: u32 = 4;
    /// Delete (`8`).
    pub const DELETE: u32 = 8;
    /// Every action (`15`).
    pub const ALL: u32 = CREATE | READ | UPDATE | DELETE;
}

/// Wildcard segment: matches any single segment of a required resource.
const WILDCARD: &str = "*";

/// Segments after which a trailing wildcard must NOT reach deeper: granting
/// `NAMESPACE:*` means "any namespace", not "anything inside any namespace".
const SCOPE_SEGMENTS: [&str; 2] = ["NAMESPACE", "USER"];

/// One granted or required permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// `:`-separated resource, possibly with `*` segments and `{placeholders}`.
    pub resource: String,
    /// Bitmask of [`action`] constants.
    pub action: u32,
}

impl Permission {
    /// A permission on `resource` for the `action` bitmask.
    pub fn new(resource: impl Into<String>, action: u32) -> Self {
        Self {
            resource: resource.into(),
            action,
        }
    }
}

/// Whether the `granted` resource pattern covers the `required` resource.
///
/// Segments are compared pairwise, a granted `*` matching any one segment.
/// When lengths differ:
/// - a shorter granted resource covers longer required ones only if its last
///   segment is `*` and the segment before that is not `NAMESPACE` or `USER`
///   (`ADMIN:*` covers `ADMIN:NAMESPACE:ns:USER`, `NAMESPACE:*` does not
///   cover `NAMESPACE:ns:USER`);
/// - a longer granted resource matches only if all its extra segments are `*`.
pub fn resource_matches(granted: &str, required: &str) -> bool {
    let granted: Vec<&str> = granted.split(':').collect();
    let required: Vec<&str> = required.split(':').collect();

    let common_prefix_matches = granted
        .iter()
        .zip(&required)
        .all(|(g, r)| g == r || *g == WILDCARD);
    if !common_prefix_matches {
        return false;
    }

    match granted.len().cmp(&required.len()) {
        std::cmp::Ordering::Equal => true,
        std::cmp::Ordering::Less => trailing_wildcard_reaches_deeper(&granted),
        std::cmp::Ordering::Greater => granted.iter().skip(required.len()).all(|g| *g == WILDCARD),
    }
}

/// Whether a granted resource shorter than the required one may cover the
/// extra required segments through its trailing `*`.
fn trailing_wildcard_reaches_deeper(granted: &[&str]) -> bool {
    match granted {
        [.., scope, last] if *last == WILDCARD => !SCOPE_SEGMENTS.contains(scope),
        // A lone `*` covers everything.
        [last] => *last == WILDCARD,
        _ => false,
    }
}

/// Whether the `granted` action bitmask includes every bit of `required`.
pub fn action_matches(granted: u32, required: u32) -> bool {
    granted & required == required
}

/// Whether any permission in `granted` covers `required` (resource and action
/// both matching on the same grant, as the SDKs require).
pub fn is_granted(granted: &[Permission], required: &Permission) -> bool {
    granted.iter().any(|grant| {
        resource_matches(&grant.resource, &required.resource)
            && action_matches(grant.action, required.action)
    })
}

/// Replaces `{name}` placeholders in `resource` with their values from `vars`.
///
/// Names may be given bare (`"namespace"`) or braced (`"{namespace}"`).
/// Unknown placeholders are left as they are. Substitution is a single pass,
/// so a value that itself contains `{...}` (user ids are client-influenced)
/// is never expanded again.
pub fn substitute(resource: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(resource.len());
    let mut rest = resource;
    while let Some(close) = rest.find('}') {
        let (head, tail) = rest.split_at(close + 1);
        // The innermost `{` before this `}` starts the placeholder, so stray
        // braces earlier in the text do not swallow it.
        match head.rfind('{') {
            Some(open) => {
                let placeholder = &head[open..];
                out.push_str(&head[..open]);
                out.push_str(lookup(placeholder, vars).unwrap_or(placeholder));
            }
            None => out.push_str(head),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The value for a braced `placeholder` such as `{userId}`, if `vars` has one.
fn lookup<'a>(placeholder: &str, vars: &[(&str, &'a str)]) -> Option<&'a str> {
    let name = placeholder.strip_prefix('{')?.strip_suffix('}')?;
    vars.iter()
        .find(|(key, _)| *key == name || *key == placeholder)
        .map(|(_, value)| *value)
}

#[cfg(test)]
mod tests {
    use super::action::{ALL, CREATE, DELETE, READ, UPDATE};
    use super::*;

    #[test]
    fn action_constants_have_wire_values() {
        assert_eq!((CREATE, READ, UPDATE, DELETE, ALL), (1, 2, 4, 8, 15));
    }

    #[test]
    fn exact_resource_matches() {
        assert!(resource_matches(
            "NAMESPACE:test:MATCHMAKING",
            "NAMESPACE:test:MATCHMAKING"
        ));
        assert!(!resource_matches(
            "NAMESPACE:test:MATCHMAKING",
            "NAMESPACE:prod:MATCHMAKING"
        ));
        assert!(!resource_matches(
            "NAMESPACE:test",
            "NAMESPACE:test:MATCHMAKING"
        ));
    }

    #[test]
    fn wildcard_matches_any_single_segment() {
        assert!(resource_matches(
            "NAMESPACE:*:MATCHMAKING",
            "NAMESPACE:test:MATCHMAKING"
        ));
        assert!(resource_matches(
            "NAMESPACE:test:USER:*:NOTIFICATION",
            "NAMESPACE:test:USER:abc:NOTIFICATION"
        ));
        assert!(!resource_matches(
            "NAMESPACE:*:MATCHMAKING",
            "NAMESPACE:test:SESSION"
        ));
    }

    #[test]
    fn wildcard_in_required_is_literal() {
        // Only the granted side is a pattern.
        assert!(!resource_matches(
            "NAMESPACE:test:MATCHMAKING",
            "NAMESPACE:*:MATCHMAKING"
        ));
    }

    #[test]
    fn trailing_wildcard_covers_longer_resources() {
        assert!(resource_matches("ADMIN:*", "ADMIN:NAMESPACE:ns:USER"));
        assert!(resource_matches(
            "NAMESPACE:test:*",
            "NAMESPACE:test:MATCHMAKING:CHANNEL"
        ));
        assert!(resource_matches("*", "NAMESPACE:test:USER:abc"));
        assert!(!resource_matches("ADMIN", "ADMIN:NAMESPACE"));
        assert!(!resource_matches("ADMIN:X", "ADMIN:X:Y"));
    }

    #[test]
    fn trailing_wildcard_after_namespace_or_user_stays_shallow() {
        assert!(!resource_matches("NAMESPACE:*", "NAMESPACE:ns:USER"));
        assert!(!resource_matches(
            "NAMESPACE:test:USER:*",
            "NAMESPACE:test:USER:abc:NOTIFICATION"
        ));
        // Same length is still a plain per-segment match.
        assert!(resource_matches("NAMESPACE:*", "NAMESPACE:ns"));
        assert!(resource_matches(
            "NAMESPACE:test:USER:*",
            "NAMESPACE:test:USER:abc"
        ));
    }

    #[test]
    fn longer_granted_matches_only_with_extra_wildcards() {
        assert!(resource_matches(
            "NAMESPACE:test:MATCHMAKING:*",
            "NAMESPACE:test:MATCHMAKING"
        ));
        assert!(resource_matches("ADMIN:*:*", "ADMIN"));
        assert!(!resource_matches(
            "NAMESPACE:test:MATCHMAKING:CHANNEL",
            "NAMESPACE:test:MATCHMAKING"
        ));
        assert!(!resource_matches("ADMIN:*:X", "ADMIN"));
    }

    #[test]
    fn action_is_a_bitmask() {
        assert!(action_matches(CREATE | READ, READ));
        assert!(action_matches(CREATE | READ, CREATE | READ));
        assert!(!action_matches(READ, CREATE));
        assert!(!action_matches(READ, CREATE | READ));
        assert!(action_matches(ALL, DELETE | UPDATE));
        assert!(action_matches(0, 0));
    }

    #[test]
    fn is_granted_needs_resource_and_action_on_one_grant() {
        let granted = [
            Permission::new("NAMESPACE:test:MATCHMAKING", CREATE),
            Permission::new("NAMESPACE:test:SESSION", READ),
        ];
        assert!(is_granted(
            &granted,
            &Permission::new("NAMESPACE:test:MATCHMAKING", CREATE)
        ));
        // READ is granted, but on a different resource.
        assert!(!is_granted(
            &granted,
            &Permission::new("NAMESPACE:test:MATCHMAKING", READ)
        ));
        assert!(!is_granted(
            &[],
            &Permission::new("NAMESPACE:test:MATCHMAKING", CREATE)
        ));
    }

    #[test]
    fn is_granted_realistic_notification_permission() {
        let granted = [Permission::new(
            "NAMESPACE:test:USER:*:NOTIFICATION",
            CREATE,
        )];
        assert!(is_granted(
            &granted,
            &Permission::new("NAMESPACE:test:USER:abc:NOTIFICATION", CREATE)
        ));
        assert!(!is_granted(
            &granted,
            &Permission::new("NAMESPACE:other:USER:abc:NOTIFICATION", CREATE)
        ));
    }

    #[test]
    fn substitute_replaces_known_placeholders() {
        let vars = [("namespace", "test"), ("userId", "abc")];
        assert_eq!(
            substitute("NAMESPACE:{namespace}:USER:{userId}:NOTIFICATION", &vars),
            "NAMESPACE:test:USER:abc:NOTIFICATION"
        );
        assert_eq!(substitute("{namespace}:{namespace}", &vars), "test:test");
    }

    #[test]
    fn substitute_accepts_braced_names() {
        assert_eq!(
            substitute("NAMESPACE:{namespace}", &[("{namespace}", "test")]),
            "NAMESPACE:test"
        );
    }

    #[test]
    fn substitute_leaves_unknown_and_unclosed_placeholders() {
        let vars = [("namespace", "test")];
        assert_eq!(
            substitute("NAMESPACE:{namespace}:USER:{userId}", &vars),
            "NAMESPACE:test:USER:{userId}"
        );
        assert_eq!(
            substitute("NAMESPACE:{namespace}:{open", &vars),
            "NAMESPACE:test:{open"
        );
        assert_eq!(substitute("{x{namespace}}", &vars), "{xtest}");
        assert_eq!(substitute("", &vars), "");
        assert_eq!(substitute("NO:PLACEHOLDERS", &vars), "NO:PLACEHOLDERS");
    }

    #[test]
    fn substitute_does_not_expand_values_twice() {
        let vars = [("userId", "{namespace}"), ("namespace", "test")];
        assert_eq!(
            substitute("USER:{userId}:NS:{namespace}", &vars),
            "USER:{namespace}:NS:test"
        );
    }

    #[test]
    fn substituted_role_permission_grants_required_one() {
        let vars = [("namespace", "test"), ("userId", "abc")];
        let role = Permission::new(
            substitute("NAMESPACE:{namespace}:USER:{userId}:NOTIFICATION", &vars),
            CREATE | READ,
        );
        assert!(is_granted(
            &[role],
            &Permission::new("NAMESPACE:test:USER:abc:NOTIFICATION", READ)
        ));
    }
}
