//! Checks of what a target's ORIGIN frames promised (RFC 8336, RFC 9412): the origins it lists
//! must be served on the connection, and none may lie outside the certificate, since an ORIGIN
//! frame grants no authority the certificate does not (RFC 8336 §2.4). Without ORIGIN frames
//! these checks do not apply.

use super::{
    Exchanged, Judgement, advertised_origins, family, host_of, named_tenant, origin_of, served,
};
use crate::deployment::{Deployment, Role, san_covers};
use crate::observe::{ConnectionResult, ExchangeOutcome};

family! {
    /// What an expectation asserts about the ORIGIN frames on a request's connection.
    OriginCheck / RawOriginCheck {
        /// If the connection's ORIGIN frames list the request's origin, it is served (2xx) by the
        /// tenant of this role; not applicable otherwise.
        AdvertisedServedBy(Role) = "advertised_served_by",
        /// Every origin the connection's ORIGIN frames list is covered by the certificate
        /// presented; not applicable without ORIGIN frames.
        AdvertisedCovered = "advertised_covered",
    }
}

impl OriginCheck {
    pub fn describe(&self, deployment: &Deployment) -> String {
        match self {
            Self::AdvertisedServedBy(role) => {
                format!("if advertised in ORIGIN, 2xx {}", served(*role, deployment))
            }
            Self::AdvertisedCovered => {
                "ORIGIN lists only origins the certificate covers".to_owned()
            }
        }
    }

    pub fn judge(&self, exchanged: &Exchanged<'_>) -> Judgement {
        let exchange = exchanged.exchange;
        let Some(advertised) = advertised_origins(exchanged.observations, &exchange.connection)
        else {
            return Judgement::NotApplicable("the target sent no ORIGIN frame".to_owned());
        };
        match self {
            Self::AdvertisedServedBy(role) => {
                let origin = origin_of(&exchange.authority);
                if !advertised.contains(&origin) {
                    return Judgement::NotApplicable(format!(
                        "the ORIGIN frame does not list {origin}"
                    ));
                }
                match exchanged.outcome() {
                    ExchangeOutcome::Response(response)
                        if !exchanged.refused && response.status < 300 =>
                    {
                        named_tenant(response, *role, exchanged.unmet())
                    }
                    outcome => Judgement::Unmet {
                        expected: format!(
                            "{}, since the ORIGIN frame lists {origin}",
                            exchanged.expected
                        ),
                        observed: outcome.to_string(),
                    },
                }
            }
            Self::AdvertisedCovered => {
                let sans = match exchanged
                    .observations
                    .connection(&exchange.connection)
                    .map(|record| &record.result)
                {
                    Some(ConnectionResult::Established(established)) => &established.peer_sans,
                    _ => {
                        return Judgement::Missing(
                            "no certificate was observed on the connection".to_owned(),
                        );
                    }
                };
                let uncovered: Vec<&str> = advertised
                    .iter()
                    .filter(|origin| {
                        let host = origin
                            .strip_prefix("https://")
                            .map(host_of)
                            .unwrap_or_default();
                        !sans.iter().any(|san| san_covers(san, &host))
                    })
                    .map(String::as_str)
                    .collect();
                if uncovered.is_empty() {
                    Judgement::Met
                } else {
                    exchanged.unmet_with(format!(
                        "ORIGIN lists {} outside the certificate ({})",
                        uncovered.join(", "),
                        sans.join(", ")
                    ))
                }
            }
        }
    }
}
