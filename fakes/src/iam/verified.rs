//! The verified-token cache: tokens whose signature IAM has already checked, and their claims.
//!
//! An RS256 verification costs tens of microseconds and every Bearer call would repeat it; a
//! look-up here costs well under one. Entries are keyed by the token's SHA-256, not the token:
//! a token is ~2 KB, its digest 32 bytes, and a collision-resistant digest means no other
//! string can pass for a verified token. The cache proves the signature only: the caller
//! re-checks expiry on every hit ([`Verified::exp`]) and revocation every time.
//!
//! The cache holds one entry per connected player (up to [`ENTRIES`]), so entries are compact.
//! A user token's claims are ~1 KiB, nearly all of it the same for every user with the same
//! roles: the role lists, the permissions (apart from the user's own id in `{userId}`
//! permissions), namespace, client, scope. An entry keeps what is the token's own (user id,
//! token id, times, display name) and shares one copy of the rest with every entry alike
//! ([`Shared`], interned by value), the user's id turned back into the `{userId}` placeholder.
//! [`Verified::claims`] rebuilds the claims exactly: a permission list that would not come
//! back byte for byte (a resource naming `{userId}` literally, say) is kept as it is instead.
//! A profile of 2,000 lobby sockets put the whole-claims cache at ~2 KB per socket, this one
//! at ~0.3 KB (map slot, entry and its strings).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use accelbyte::models::iam::{JwtBan, JwtClaims, NamespaceRole, PermissionPascal};
use accelbyte::permission;

/// Most verified tokens remembered (an entry is ~0.3 KB with its share of [`Shared`]).
pub const ENTRIES: usize = 65_536;

/// The cache's key: the token's SHA-256.
pub type TokenDigest = [u8; 32];

pub fn token_digest(token: &str) -> TokenDigest {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Verified tokens by digest (see the module docs).
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: HashMap<TokenDigest, Arc<Verified>>,
    /// One copy of each distinct [`Shared`]; cleared with the entries.
    shared: HashSet<Arc<Shared>>,
}

impl VerifiedCache {
    /// The entry of a verified token, if it is remembered.
    pub fn get(&self, digest: &TokenDigest) -> Option<Arc<Verified>> {
        self.entries.get(digest).cloned()
    }

    /// Remembers that the token with `digest` carries `claims` and a valid signature.
    pub fn insert(&mut self, digest: TokenDigest, claims: &JwtClaims) {
        if self.entries.len() >= ENTRIES {
            // Bounded memory: start over rather than track recency; misses only cost a verify.
            self.clear();
        }
        let shared = Shared::of(claims);
        let shared = match self.shared.get(&shared) {
            Some(known) => Arc::clone(known),
            None => {
                let shared = Arc::new(shared);
                self.shared.insert(Arc::clone(&shared));
                shared
            }
        };
        self.entries
            .insert(digest, Arc::new(Verified::new(claims, shared)));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.shared.clear();
    }

    /// Tokens remembered.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Distinct shared parts held.
    #[cfg(test)]
    fn shared_parts(&self) -> usize {
        self.shared.len()
    }
}

/// One verified token: its own claims, and the part it shares with tokens alike.
#[derive(Debug)]
pub struct Verified {
    sub: Option<Box<str>>,
    jti: Option<Box<str>>,
    iat: i64,
    nbf: Option<i64>,
    exp: i64,
    display_name: Box<str>,
    shared: Arc<Shared>,
}

/// The claims tokens of users alike have in common.
#[derive(Debug, PartialEq, Eq)]
struct Shared {
    iss: Option<String>,
    namespace: String,
    roles: Vec<String>,
    namespace_roles: Vec<NamespaceRole>,
    /// With the token's `sub` turned into `{userId}` when `user_templated`.
    permissions: Vec<PermissionPascal>,
    user_templated: bool,
    bans: Option<Vec<JwtBan>>,
    jflgs: i64,
    scope: String,
    country: String,
    client_id: String,
    is_comply: bool,
}

/// Hashes the fields that tell roles and clients apart (a subset, which keeps it consistent
/// with `Eq`): what the interner needs to find the one equal copy.
impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.client_id.hash(state);
        self.roles.hash(state);
        for p in &self.permissions {
            p.resource.hash(state);
            p.action.hash(state);
        }
    }
}

/// The placeholder role permissions carry before a user's id fills it in, and its name.
const USER_ID_PLACEHOLDER: &str = "{userId}";
const USER_ID: &str = "userId";

impl Verified {
    /// When the token expires (Unix seconds).
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// The token's claims, exactly as verified.
    pub fn claims(&self) -> JwtClaims {
        let s = &*self.shared;
        let permissions = match (&self.sub, s.user_templated) {
            (Some(sub), true) => s
                .permissions
                .iter()
                .map(|p| PermissionPascal {
                    resource: permission::substitute(&p.resource, &[(USER_ID, sub)]),
                    ..p.clone()
                })
                .collect(),
            _ => s.permissions.clone(),
        };
        JwtClaims {
            sub: self.sub.as_deref().map(str::to_owned),
            iss: s.iss.clone(),
            jti: self.jti.as_deref().map(str::to_owned),
            iat: self.iat,
            nbf: self.nbf,
            exp: self.exp,
            namespace: s.namespace.clone(),
            display_name: self.display_name.to_string(),
            roles: s.roles.clone(),
            namespace_roles: s.namespace_roles.clone(),
            permissions,
            bans: s.bans.clone(),
            jflgs: s.jflgs,
            scope: s.scope.clone(),
            country: s.country.clone(),
            client_id: s.client_id.clone(),
            is_comply: s.is_comply,
        }
    }

    /// The entry for `claims`, whose shared part is `shared` (made by [`Shared::of`]).
    fn new(claims: &JwtClaims, shared: Arc<Shared>) -> Self {
        Verified {
            sub: claims.sub.as_deref().map(Box::from),
            jti: claims.jti.as_deref().map(Box::from),
            iat: claims.iat,
            nbf: claims.nbf,
            exp: claims.exp,
            display_name: claims.display_name.as_str().into(),
            shared,
        }
    }
}

impl Shared {
    /// What `claims` may share with other tokens.
    fn of(claims: &JwtClaims) -> Self {
        // Every field named, so a claim added to `JwtClaims` cannot be forgotten here.
        let JwtClaims {
            sub,
            iss,
            // The token's own, kept in its `Verified`.
            jti: _,
            iat: _,
            nbf: _,
            exp: _,
            display_name: _,
            namespace,
            roles,
            namespace_roles,
            permissions,
            bans,
            jflgs,
            scope,
            country,
            client_id,
            is_comply,
        } = claims;
        let templated = sub
            .as_deref()
            .and_then(|sub| user_template(permissions, sub));
        Shared {
            iss: iss.clone(),
            namespace: namespace.clone(),
            roles: roles.clone(),
            namespace_roles: namespace_roles.clone(),
            user_templated: templated.is_some(),
            permissions: templated.unwrap_or_else(|| permissions.clone()),
            bans: bans.clone(),
            jflgs: *jflgs,
            scope: scope.clone(),
            country: country.clone(),
            client_id: client_id.clone(),
            is_comply: *is_comply,
        }
    }
}

/// `permissions` with `sub` turned back into `{userId}`, if filling it in again gives every
/// resource back exactly (otherwise `None`: the list is kept as the token has it).
fn user_template(permissions: &[PermissionPascal], sub: &str) -> Option<Vec<PermissionPascal>> {
    if sub.is_empty() {
        return None;
    }
    permissions
        .iter()
        .map(|p| {
            let resource = p.resource.replace(sub, USER_ID_PLACEHOLDER);
            (permission::substitute(&resource, &[(USER_ID, sub)]) == p.resource).then(|| {
                PermissionPascal {
                    resource,
                    ..p.clone()
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(resource: &str, action: u32) -> PermissionPascal {
        PermissionPascal {
            resource: resource.to_owned(),
            action,
            sched_action: None,
            sched_cron: None,
            sched_range: None,
        }
    }

    /// A player's claims as IAM issues them: role permissions with the user's id filled in.
    fn player(user_id: &str, jti: &str) -> JwtClaims {
        JwtClaims {
            sub: Some(user_id.to_owned()),
            iss: Some("https://fakes".to_owned()),
            jti: Some(jti.to_owned()),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            namespace: "ns".to_owned(),
            display_name: format!("name of {user_id}"),
            roles: vec!["player-role".to_owned()],
            namespace_roles: vec![NamespaceRole {
                role_id: "player-role".to_owned(),
                namespace: "ns".to_owned(),
            }],
            permissions: vec![
                permission("NAMESPACE:ns:MATCHMAKING", 1),
                permission(&format!("NAMESPACE:ns:USER:{user_id}"), 2),
                permission(&format!("NAMESPACE:ns:USER:{user_id}:STAT:{user_id}"), 4),
            ],
            bans: Some(Vec::new()),
            jflgs: 1,
            scope: "account".to_owned(),
            country: "US".to_owned(),
            client_id: "player-client".to_owned(),
            is_comply: true,
            ..JwtClaims::default()
        }
    }

    fn round_trip(claims: &JwtClaims) -> JwtClaims {
        let mut cache = VerifiedCache::default();
        cache.insert([7; 32], claims);
        let entry = cache.get(&[7; 32]).expect("remembered");
        assert_eq!(entry.exp(), claims.exp);
        entry.claims()
    }

    #[test]
    fn claims_come_back_exactly() {
        let claims = player("0123abcd", "jti-1");
        assert_eq!(round_trip(&claims), claims);

        let client = JwtClaims {
            sub: None,
            permissions: vec![permission("ADMIN:NAMESPACE:ns:USER:*", 15)],
            ..player("x", "jti-2")
        };
        assert_eq!(round_trip(&client), client);
    }

    #[test]
    fn permissions_that_do_not_template_cleanly_are_kept_as_they_are() {
        let mut literal = player("u1", "jti");
        literal
            .permissions
            .push(permission("NAMESPACE:ns:{userId}", 2));
        assert_eq!(round_trip(&literal), literal);

        // A one-letter id occurs all over the resources; it still comes back as it was.
        let short = player("S", "jti");
        assert_eq!(round_trip(&short), short);

        let mut empty = player("", "jti");
        empty.sub = Some(String::new());
        assert_eq!(round_trip(&empty), empty);

        let mut placeholder_id = player("{userId}", "jti");
        placeholder_id
            .permissions
            .push(permission("A:{b}:{userId}}", 1));
        assert_eq!(round_trip(&placeholder_id), placeholder_id);
    }

    #[test]
    fn users_alike_share_one_copy_of_their_roles_and_permissions() {
        let mut cache = VerifiedCache::default();
        for i in 0..100_u8 {
            cache.insert([i; 32], &player(&format!("user{i:03}"), &format!("jti{i}")));
        }
        assert_eq!(cache.entries(), 100);
        assert_eq!(cache.shared_parts(), 1);
        for i in 0..100_u8 {
            let claims = cache.get(&[i; 32]).expect("remembered").claims();
            assert_eq!(claims, player(&format!("user{i:03}"), &format!("jti{i}")));
        }

        let other_client = JwtClaims {
            client_id: "another-client".to_owned(),
            ..player("user000", "jti-other")
        };
        cache.insert([200; 32], &other_client);
        assert_eq!(cache.shared_parts(), 2);
        assert_eq!(
            cache.get(&[200; 32]).expect("remembered").claims(),
            other_client
        );
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache = VerifiedCache::default();
        let claims = player("u", "jti");
        for i in 0..ENTRIES {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(digest, &claims);
        }
        assert_eq!(cache.entries(), ENTRIES);
        cache.insert([255; 32], &claims);
        assert_eq!(cache.entries(), 1);
        assert_eq!(cache.shared_parts(), 1);
        assert!(cache.get(&[255; 32]).is_some());
    }
}
