//! Every Durable Object instance the Worker addresses, in one enum: which class it is of and
//! the name it is found by. The names are the objects' identities (their stored state lives
//! under them), so they never change shape; a test pins each one.

/// A Durable Object class, by its binding in `wrangler.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `limits::object::RateLimiter`.
    Limits,
    /// `conversations::object::Conversation`.
    Conversations,
    /// `accounts::object::Account`.
    Accounts,
    /// `knowledge::object::TwinKnowledge`.
    Knowledge,
}

impl Class {
    pub fn binding(self) -> &'static str {
        match self {
            Class::Limits => "RATE_LIMITER",
            Class::Conversations => "CONVERSATIONS",
            Class::Accounts => "ACCOUNTS",
            Class::Knowledge => "TWIN_KNOWLEDGE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance<'a> {
    /// An API key's verification record and counters, named by the key's hash (never the key).
    Key { hash: &'a str },
    /// A session user's counters (JWT routes).
    User { user_id: &'a str },
    /// A client IP's counters on the public routes that count per IP.
    Ip { ip: &'a str },
    /// A client IP's failed API-key attempts.
    AuthFailures { ip: &'a str },
    /// One email's login attempts.
    Login { email: &'a str },
    /// One client IP's registrations on one UTC day (`YYYY-MM-DD`): a new day, a new counter.
    Signups { ip: &'a str, day: &'a str },
    /// One end user of an account: their messages per hour (SPEC §16).
    EndUser {
        user_id: &'a str,
        end_user_id: &'a str,
    },
    /// An account's cell: its generation slots and its usage.
    Account { user_id: &'a str },
    /// A twin's knowledge: its documents, passages and their index.
    Twin { id: &'a str },
    /// A conversation's messages and its running generation.
    Conversation { id: &'a str },
}

impl Instance<'_> {
    pub fn class(&self) -> Class {
        match self {
            Instance::Conversation { .. } => Class::Conversations,
            Instance::Account { .. } => Class::Accounts,
            Instance::Twin { .. } => Class::Knowledge,
            _ => Class::Limits,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Instance::Key { hash } => format!("key:{hash}"),
            Instance::User { user_id } => format!("user:{user_id}"),
            Instance::Ip { ip } => format!("ip:{ip}"),
            Instance::AuthFailures { ip } => format!("authfail:{ip}"),
            Instance::Login { email } => format!("login:{email}"),
            Instance::Signups { ip, day } => format!("signup:{ip}:{day}"),
            Instance::EndUser {
                user_id,
                end_user_id,
            } => format!("enduser:{user_id}:{end_user_id}"),
            Instance::Account { user_id } => format!("account:{user_id}"),
            Instance::Twin { id } => format!("twin:{id}"),
            Instance::Conversation { id } => (*id).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_shape_existing_state_is_stored_under() {
        let cases = [
            (Instance::Key { hash: "ab" }, "key:ab"),
            (Instance::User { user_id: "usr_1" }, "user:usr_1"),
            (Instance::Ip { ip: "::1" }, "ip:::1"),
            (Instance::AuthFailures { ip: "1.2.3.4" }, "authfail:1.2.3.4"),
            (Instance::Login { email: "a@b.c" }, "login:a@b.c"),
            (
                Instance::Signups {
                    ip: "1.2.3.4",
                    day: "2026-12-05",
                },
                "signup:1.2.3.4:2026-12-05",
            ),
            (Instance::Account { user_id: "usr_1" }, "account:usr_1"),
            (Instance::Twin { id: "twn_1" }, "twin:twn_1"),
            (Instance::Conversation { id: "conv_1" }, "conv_1"),
        ];
        for (instance, name) in cases {
            assert_eq!(instance.name(), name);
        }
        assert_eq!(
            Instance::Conversation { id: "c" }.class(),
            Class::Conversations
        );
        assert_eq!(
            Instance::Key { hash: "h" }.class().binding(),
            "RATE_LIMITER"
        );
        assert_eq!(
            Instance::Account { user_id: "u" }.class().binding(),
            "ACCOUNTS"
        );
    }
}
