//! The seed: namespaces, OAuth clients, roles and users that exist when `fakes` starts.
//!
//! Read from TOML (`fakes serve --seed FILE`, unknown keys refused) or taken from the built-in
//! default, which is enough to run the AccelByte tutorial's flow unchanged. Placeholders
//! `{namespace}` in client and role permissions are filled in when the seed is applied.

use serde::Deserialize;

/// A permission in a seed file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPermission {
    pub resource: String,
    /// Bitmask: CREATE 1, READ 2, UPDATE 4, DELETE 8.
    pub action: u32,
}

/// An OAuth client. No `secret` means a public client (it sends `client_id:` as Basic).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedClient {
    pub id: String,
    #[serde(default)]
    pub secret: Option<String>,
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub permissions: Vec<SeedPermission>,
}

/// A role; `{namespace}` and `{userId}` in its permissions are substituted per token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRole {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub permissions: Vec<SeedPermission>,
}

/// A user that can log in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub username: String,
    pub password: String,
    pub namespace: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Role ids; empty means the seed's `default_user_roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Bans on the user (AGS's ban model); those in force travel in the user's tokens' `bans`.
    #[serde(default)]
    pub bans: Vec<SeedBan>,
}

/// A ban, as AGS IAM records it: a type (`LOGIN`, `MATCHMAKING`, `CHAT_SEND`, ...), an end
/// date (RFC 3339), whether it is enabled, and optionally the namespace it targets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedBan {
    pub ban: String,
    pub end_date: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub targeted_namespace: String,
}

fn enabled() -> bool {
    true
}

/// The whole seed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub clients: Vec<SeedClient>,
    #[serde(default)]
    pub roles: Vec<SeedRole>,
    /// Roles given to users created at run time and to seed users that name none.
    #[serde(default)]
    pub default_user_roles: Vec<String>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    /// The `iss` claim of every token (AGS puts its public base URL there).
    #[serde(default = "default_issuer")]
    pub issuer: String,
}

/// The `iss` of tokens when the seed names none.
pub const DEFAULT_ISSUER: &str = "https://fakes.matchbench.invalid";

fn default_issuer() -> String {
    DEFAULT_ISSUER.to_owned()
}

/// The built-in seed, as TOML so users can copy it as a starting point.
pub const DEFAULT_SEED_TOML: &str = include_str!("default_seed.toml");

/// The identities of the built-in seed ([`DEFAULT_SEED_TOML`]), for Rust code that logs in
/// against a fakes started with it: tests, benches, the load generator's defaults. The TOML
/// stays what users read and copy; a unit test checks every constant against it.
pub mod builtin {
    /// The one namespace.
    pub const NAMESPACE: &str = "matchbench";
    /// The validator's confidential client (JWKS, verify and role look-ups).
    pub const IAM_CLIENT_ID: &str = "matchbench-iam";
    pub const IAM_CLIENT_SECRET: &str = "matchbench-iam-secret";
    /// The game server's confidential client: session browser, DSMC, notifications, test users,
    /// Session v2 and Matchmaking v2 administration.
    pub const GAME_CLIENT_ID: &str = "matchbench-game";
    pub const GAME_CLIENT_SECRET: &str = "matchbench-game-secret";
    /// The public game client players log in with (no secret).
    pub const PLAYER_CLIENT_ID: &str = "matchbench-player";
    /// The `User` role every user gets unless the user names its own.
    pub const USER_ROLE_ID: &str = "2251438839e948d783ec0e5281daf05b";
    /// The seeded players, as `(username, password)`.
    pub const PLAYER1: (&str, &str) = ("player1", "Player1Pass!");
    pub const PLAYER2: (&str, &str) = ("player2", "Player2Pass!");
    /// `(id, secret)` of the validator's client.
    pub const IAM_CLIENT: (&str, &str) = (IAM_CLIENT_ID, IAM_CLIENT_SECRET);
    /// `(id, secret)` of the game server's client.
    pub const GAME_CLIENT: (&str, &str) = (GAME_CLIENT_ID, GAME_CLIENT_SECRET);
}

/// Why a seed file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Seed {
    /// The built-in default seed.
    pub fn builtin() -> Self {
        Self::parse(DEFAULT_SEED_TOML, "<built-in seed>").expect("the built-in seed is valid")
    }

    /// Reads and validates a seed file.
    pub fn load(path: &std::path::Path) -> Result<Self, SeedError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates seed TOML; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SeedError> {
        let seed: Seed = toml::from_str(text).map_err(|source| SeedError::Parse {
            path: origin.to_owned(),
            source,
        })?;
        seed.validate().map_err(|message| SeedError::Invalid {
            path: origin.to_owned(),
            message,
        })?;
        Ok(seed)
    }

    fn validate(&self) -> Result<(), String> {
        if self.namespaces.is_empty() {
            return Err("namespaces: at least one namespace is required".into());
        }
        let known_ns = |ns: &str| self.namespaces.iter().any(|n| n == ns);
        let known_role = |r: &str| self.roles.iter().any(|role| role.id == r);
        for c in &self.clients {
            if !known_ns(&c.namespace) {
                return Err(format!(
                    "clients.{}.namespace: unknown namespace {:?}",
                    c.id, c.namespace
                ));
            }
        }
        for r in self.default_user_roles.iter() {
            if !known_role(r) {
                return Err(format!("default_user_roles: unknown role {r:?}"));
            }
        }
        for u in &self.users {
            if !known_ns(&u.namespace) {
                return Err(format!(
                    "users.{}.namespace: unknown namespace {:?}",
                    u.username, u.namespace
                ));
            }
            if let Some(r) = u.roles.iter().find(|r| !known_role(r)) {
                return Err(format!("users.{}.roles: unknown role {r:?}", u.username));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_seed_parses() {
        let seed = Seed::builtin();
        assert!(!seed.clients.is_empty());
        assert!(seed.users.len() >= 2);
    }

    #[test]
    fn builtin_constants_are_the_default_seeds() {
        let seed = Seed::builtin();
        assert_eq!(seed.namespaces, [builtin::NAMESPACE]);
        let client = |id: &str| {
            seed.clients
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("client {id} is not in the seed"))
        };
        for (id, secret) in [builtin::IAM_CLIENT, builtin::GAME_CLIENT] {
            let c = client(id);
            assert_eq!(c.secret.as_deref(), Some(secret), "{id}");
            assert_eq!(c.namespace, builtin::NAMESPACE, "{id}");
        }
        let player = client(builtin::PLAYER_CLIENT_ID);
        assert_eq!(player.secret, None, "players log in with a public client");
        assert_eq!(player.namespace, builtin::NAMESPACE);
        assert_eq!(seed.default_user_roles, [builtin::USER_ROLE_ID]);
        assert!(seed.roles.iter().any(|r| r.id == builtin::USER_ROLE_ID));
        for (username, password) in [builtin::PLAYER1, builtin::PLAYER2] {
            let user = seed
                .users
                .iter()
                .find(|u| u.username == username)
                .unwrap_or_else(|| panic!("user {username} is not in the seed"));
            assert_eq!(user.password, password);
            assert_eq!(user.namespace, builtin::NAMESPACE);
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Seed::parse("namespaces = [\"a\"]\nbogus = 1\n", "x.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("x.toml") && text.contains("bogus"), "{text}");
    }

    #[test]
    fn unknown_role_is_refused() {
        let toml = "namespaces=[\"a\"]\n[[users]]\nusername=\"u\"\npassword=\"p\"\nnamespace=\"a\"\nroles=[\"nope\"]\n";
        let err = Seed::parse(toml, "s.toml").unwrap_err().to_string();
        assert!(
            err.contains("users.u.roles") && err.contains("nope"),
            "{err}"
        );
    }
}
