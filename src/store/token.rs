//! The per-subscriber secret in unsubscribe and preferences links.
//!
//! A token is a random 128-bit public id, which finds the subscriber, followed by a random
//! 256-bit secret, which proves the link came from one of our messages; both are made with the
//! operating system's random generator, never from the address. Rotating the secret makes every
//! link sent before it useless. The secret is compared in constant time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::{PgConnection, Postgres, Transaction};
use subtle::ConstantTimeEq;

use super::consent::{self, ConsentAction, ConsentSource};
use super::subscriber::{self, Subscriber, SubscriberId};
use super::{Store, StoreError};

const ID_LEN: usize = 16;
const SECRET_LEN: usize = 32;
/// A link id and its secret, drawn together (as an import does, for many rows at once).
pub(crate) const LINK_ID_LEN: usize = ID_LEN;
pub(crate) const LINK_KEY_LEN: usize = ID_LEN + SECRET_LEN;

/// The random parts of a new subscriber's links.
pub(crate) struct LinkKeys {
    pub id: Vec<u8>,
    pub secret: Vec<u8>,
}

impl LinkKeys {
    pub fn generate() -> Result<Self, StoreError> {
        Ok(Self {
            id: random(ID_LEN)?,
            secret: random(SECRET_LEN)?,
        })
    }
}

pub(crate) fn random(len: usize) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![0; len];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(bytes)
}

/// What goes in a link: `https://…/preferences/<token>`. URL-safe, 64 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken {
    id: Vec<u8>,
    secret: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the link is not valid (it may be mistyped, cut short, or from before it was replaced)")]
pub struct BadLink;

impl LinkToken {
    pub(crate) fn new(id: Vec<u8>, secret: Vec<u8>) -> Self {
        Self { id, secret }
    }

    /// Reads the token from a link. Only its shape is checked here; [`super::Store::find_by_link`]
    /// checks that it is current.
    pub fn parse(s: &str) -> Result<Self, BadLink> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| BadLink)?;
        if bytes.len() != ID_LEN + SECRET_LEN {
            return Err(BadLink);
        }
        let (id, secret) = bytes.split_at(ID_LEN);
        Ok(Self {
            id: id.to_vec(),
            secret: secret.to_vec(),
        })
    }

    /// For putting in a link. Never log it: it lets anyone change the subscriber's preferences.
    pub fn expose(&self) -> String {
        let mut bytes = self.id.clone();
        bytes.extend_from_slice(&self.secret);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn id(&self) -> &[u8] {
        &self.id
    }

    /// True when `stored` is this token's secret, in time that does not depend on where they
    /// differ.
    pub(crate) fn matches(&self, stored: &[u8]) -> bool {
        self.secret.ct_eq(stored).into()
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(***)")
    }
}

impl Store {
    /// The token for a subscriber's unsubscribe and preferences links.
    pub async fn link_token(&self, subscriber: &Subscriber) -> Result<LinkToken, StoreError> {
        let mut conn = self.pool.acquire().await?;
        token_of(&mut conn, subscriber.id).await
    }

    /// The subscriber a link belongs to, if the link is current.
    pub async fn find_by_link(&self, token: &LinkToken) -> Result<Subscriber, StoreError> {
        let mut conn = self.pool.acquire().await?;
        match secret_for(&mut conn, token.id()).await? {
            Some((id, stored)) if token.matches(&stored) => subscriber::by_id(&mut conn, id).await,
            _ => Err(StoreError::BadLink(BadLink)),
        }
    }

    /// Gives the subscriber a new link secret: links in earlier messages stop working.
    pub async fn rotate_link(
        &self,
        subscriber: &Subscriber,
        source: &ConsentSource,
    ) -> Result<LinkToken, StoreError> {
        let mut tx = self.pool.begin().await?;
        replace_secret(&mut tx, subscriber.id, &random(SECRET_LEN)?).await?;
        let detail = serde_json::json!({});
        consent::record(
            &mut tx,
            subscriber.id,
            ConsentAction::LinkRotated,
            source,
            detail,
        )
        .await?;
        let token = token_of(&mut tx, subscriber.id).await?;
        tx.commit().await?;
        Ok(token)
    }
}

/// The subscriber id and secret stored under a link id.
pub(crate) async fn secret_for(
    conn: &mut PgConnection,
    link_id: &[u8],
) -> Result<Option<(SubscriberId, Vec<u8>)>, StoreError> {
    let row = sqlx::query!(
        r#"SELECT id AS "id: SubscriberId", link_secret FROM subscribers WHERE link_id = $1"#,
        link_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.id, r.link_secret)))
}

pub(crate) async fn token_of(
    conn: &mut PgConnection,
    subscriber_id: SubscriberId,
) -> Result<LinkToken, StoreError> {
    let row = sqlx::query!(
        "SELECT link_id, link_secret FROM subscribers WHERE id = $1",
        subscriber_id as SubscriberId
    )
    .fetch_one(conn)
    .await?;
    Ok(LinkToken::new(row.link_id, row.link_secret))
}

pub(crate) async fn replace_secret(
    tx: &mut Transaction<'_, Postgres>,
    subscriber_id: SubscriberId,
    secret: &[u8],
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE subscribers SET link_secret = $2, updated_at = now() WHERE id = $1",
        subscriber_id as SubscriberId,
        secret
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_survives_the_trip_through_a_link() {
        let keys = LinkKeys::generate().expect("random");
        let token = LinkToken::new(keys.id, keys.secret);
        let text = token.expose();
        assert_eq!(text.len(), 64);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(LinkToken::parse(&text), Ok(token));
    }

    #[test]
    fn a_cut_short_or_mangled_token_is_refused() {
        let text = LinkToken::new(vec![1; ID_LEN], vec![2; SECRET_LEN]).expose();
        assert_eq!(LinkToken::parse(&text[..63]), Err(BadLink));
        assert_eq!(LinkToken::parse(&format!("{text}AA")), Err(BadLink));
        assert_eq!(LinkToken::parse("not a token!"), Err(BadLink));
    }

    #[test]
    fn two_new_subscribers_never_share_a_secret() {
        let a = LinkKeys::generate().expect("random");
        let b = LinkKeys::generate().expect("random");
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn a_token_does_not_show_its_secret_in_logs() {
        let token = LinkToken::new(vec![1; ID_LEN], vec![2; SECRET_LEN]);
        assert_eq!(format!("{token:?}"), "LinkToken(***)");
    }
}
