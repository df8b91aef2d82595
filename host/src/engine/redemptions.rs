//! Redemptions (quote, commit, cancel), perk consumption, and partner offers.

use crate::webhooks::{EventKind, announce};
use serde::{Deserialize, Serialize};

use super::error::invalid;
use super::{
    Ctx, Done, Engine, EngineError, OperationRecord, Recorded, RedemptionRecord, RedemptionStatus,
    decode, encode, fingerprint,
};
use crate::domain::{Offer, RedemptionAnswer, RedemptionRequest, Rejection, Timestamp};
use crate::sandbox::{Hook, Session};
use crate::storage::{Batch, Key, Space};

/// The answer to a quote request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum QuoteAnswer {
    /// Priced: commit the redemption before it expires.
    Quoted(Box<RedemptionRecord>),
    /// The programme said no, with its reason.
    Rejected(Rejection),
}

/// A perk consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Consumed {
    /// The consumption id.
    pub id: String,
    /// Perk id.
    pub perk: String,
    /// Grant key.
    pub grant: String,
    /// Uses left (`None`: unlimited).
    pub remaining: Option<u32>,
    /// When.
    pub at: Timestamp,
}

fn redemption_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[id.as_bytes()])
}

impl Engine {
    /// Ask the programme to price a redemption. An accepted quote is stored and can be
    /// committed until it expires (`ttl` seconds).
    pub fn quote(
        &self,
        merchant: &str,
        member: &str,
        request: &RedemptionRequest,
        now: Timestamp,
        ttl: i64,
    ) -> Result<Done<QuoteAnswer>, EngineError> {
        let settings = self.merchant(merchant)?;
        let programme = self.programme(merchant)?;
        let mut rec = self.load_active(merchant, member)?;
        let config = self.config_text(&settings, &*programme);
        let ctx = Ctx::new(merchant, now, &config, &settings.currency);
        // Expiry up to now counts for the price; it is written by the commit (or the
        // next read), not here.
        rec.account.settle(now);
        let answer = programme
            .quote_redemption(
                &mut Session::new(),
                &Self::snapshot(&rec, now),
                request,
                &ctx,
            )?
            .map_err(|error| EngineError::PluginRefused {
                hook: Hook::QuoteRedemption,
                error,
            })?;
        let quote = match answer {
            RedemptionAnswer::Reject(r) => {
                return Ok(Done {
                    value: QuoteAnswer::Rejected(r),
                    ticket: self.commit.current(),
                });
            }
            RedemptionAnswer::Accept(q) => q,
        };
        let id = format!("rdm_{}", super::members::random_id()?);
        let record = RedemptionRecord {
            id: id.clone(),
            member: member.to_string(),
            partner: request.partner.clone(),
            status: RedemptionStatus::Quoted,
            request: request.clone(),
            quote,
            plugin_version: programme.version().to_string(),
            quoted_at: now,
            expires_at: now + ttl,
            committed_at: None,
            cancelled_at: None,
            taken: Vec::new(),
            balance: None,
        };
        let mut batch = Batch::new();
        batch.put(
            Space::Redemptions,
            redemption_key(merchant, &id),
            encode(&record),
        );
        let ticket = self.apply(batch)?;
        Ok(Done {
            value: QuoteAnswer::Quoted(Box::new(record)),
            ticket,
        })
    }

    /// A redemption.
    pub fn redemption(&self, merchant: &str, id: &str) -> Result<RedemptionRecord, EngineError> {
        let bytes = self
            .storage
            .get(Space::Redemptions, &redemption_key(merchant, id))?
            .ok_or_else(|| EngineError::UnknownRedemption(id.to_string()))?;
        decode(&bytes, "redemption")
    }

    /// A redemption read under its member's lock (found from the redemption, then
    /// read again under the lock so no concurrent change is missed).
    fn locked_redemption(
        &self,
        merchant: &str,
        id: &str,
    ) -> Result<(std::sync::MutexGuard<'_, ()>, RedemptionRecord), EngineError> {
        let member = self.redemption(merchant, id)?.member;
        let guard = self.lock_member(merchant, &member);
        Ok((guard, self.redemption(merchant, id)?))
    }

    /// Commit a quoted redemption: deduct its points, atomically. Committing again
    /// answers the committed redemption.
    pub fn commit_redemption(
        &self,
        merchant: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<Done<RedemptionRecord>, EngineError> {
        let (_g, mut r) = self.locked_redemption(merchant, id)?;
        let member = r.member.clone();
        match r.status {
            RedemptionStatus::Committed => {
                return Ok(Done {
                    value: r,
                    ticket: self.commit.current(),
                });
            }
            RedemptionStatus::Cancelled => {
                return Err(EngineError::RedemptionState {
                    id: r.id,
                    status: r.status,
                });
            }
            RedemptionStatus::Quoted if now > r.expires_at => {
                return Err(EngineError::QuoteExpired(r.id));
            }
            RedemptionStatus::Quoted => {}
        }
        let mut rec = self.load_active(merchant, &member)?;
        let reason = format!("redeemed: {}", r.quote.description);
        r.taken = if r.quote.points > 0 {
            rec.account.spend(r.quote.points, now, &reason, &r.id)?
        } else {
            Vec::new()
        };
        r.status = RedemptionStatus::Committed;
        r.committed_at = Some(now);
        r.balance = Some(rec.account.balance(now));
        let mut batch = Batch::new();
        batch.put(Space::Redemptions, redemption_key(merchant, id), encode(&r));
        self.record(
            &mut batch,
            merchant,
            &Recorded::Redemption {
                member: member.clone(),
                id: r.id.clone(),
                request: r.request.clone(),
                at: now,
            },
        );
        announce(
            &self.subscriptions,
            &mut batch,
            merchant,
            EventKind::RedemptionCommitted,
            now,
            || {
                serde_json::json!({
                    "redemption": r.id, "member": r.member, "partner": r.partner,
                    "reward": r.quote.reward, "points": r.quote.points, "cash": r.quote.cash,
                    "balance": r.balance,
                })
            },
        );
        self.put_member(&mut batch, merchant, &mut rec);
        let ticket = self.apply(batch)?;
        Ok(Done { value: r, ticket })
    }

    /// Cancel a redemption: a committed one returns its points (to the lots they came
    /// from); a quote is voided. Cancelling again answers the cancelled redemption.
    pub fn cancel_redemption(
        &self,
        merchant: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<Done<RedemptionRecord>, EngineError> {
        let (_g, mut r) = self.locked_redemption(merchant, id)?;
        let member = r.member.clone();
        let mut batch = Batch::new();
        match r.status {
            RedemptionStatus::Cancelled => {
                return Ok(Done {
                    value: r,
                    ticket: self.commit.current(),
                });
            }
            RedemptionStatus::Quoted => {}
            RedemptionStatus::Committed => {
                let mut rec = self.load_member(merchant, &member)?;
                rec.account.cancel_spend(
                    &r.taken,
                    now,
                    &format!("cancelled: {}", r.quote.description),
                    &r.id,
                );
                r.balance = Some(rec.account.balance(now));
                self.put_member(&mut batch, merchant, &mut rec);
                self.record(
                    &mut batch,
                    merchant,
                    &Recorded::Cancel {
                        id: r.id.clone(),
                        at: now,
                    },
                );
            }
        }
        r.status = RedemptionStatus::Cancelled;
        r.cancelled_at = Some(now);
        batch.put(Space::Redemptions, redemption_key(merchant, id), encode(&r));
        let ticket = self.apply(batch)?;
        Ok(Done { value: r, ticket })
    }

    /// Consume one use of a perk the member holds (`grant` picks one grant; without
    /// it, the usable grant that expires first). The programme's `perks` runs first,
    /// so a grant due now (this month's free rides) can be used before any event.
    /// Idempotent by `consumption` id.
    pub fn consume_perk(
        &self,
        merchant: &str,
        member: &str,
        perk: &str,
        grant: Option<&str>,
        consumption: &str,
        now: Timestamp,
    ) -> Result<Done<Consumed>, EngineError> {
        if consumption.is_empty() || consumption.len() > 128 {
            return Err(invalid("/id", "must be 1-128 characters"));
        }
        let print = fingerprint(&[
            member.as_bytes(),
            perk.as_bytes(),
            grant.unwrap_or("").as_bytes(),
        ]);
        let key = Key::merchant(merchant, &[b"consumption", consumption.as_bytes()]);
        let _g = self.lock_member_and(merchant, member, "consumption", consumption);
        if let Some(done) = self.replay_operation(&key, "consumption", consumption, &print)? {
            return Ok(done);
        }
        let settings = self.merchant(merchant)?;
        let programme = self.programme(merchant)?;
        let mut rec = self.load_active(merchant, member)?;
        let config = self.config_text(&settings, &*programme);
        let ctx = Ctx::new(merchant, now, &config, &settings.currency);
        rec.account.settle(now);
        self.refresh_perks(&*programme, &mut Session::new(), &ctx, &mut rec, now)?;
        self.read_perks(merchant, &mut rec)?;
        let chosen = rec
            .perks
            .iter_mut()
            .filter(|e| e.id == perk && grant.is_none_or(|g| e.grant == g) && e.usable(now))
            .min_by_key(|e| e.valid_until.unwrap_or(i64::MAX))
            .ok_or_else(|| EngineError::NoSuchPerk(perk.to_string()))?;
        chosen.used += 1;
        let value = Consumed {
            id: consumption.to_string(),
            perk: chosen.id.clone(),
            grant: chosen.grant.clone(),
            remaining: chosen.remaining(),
            at: now,
        };
        let mut batch = Batch::new();
        batch.put(
            Space::Idempotency,
            key,
            encode(&OperationRecord {
                fingerprint: print,
                result: serde_json::to_value(&value).unwrap_or_default(),
            }),
        );
        self.put_member(&mut batch, merchant, &mut rec);
        let ticket = self.apply(batch)?;
        Ok(Done { value, ticket })
    }

    /// The offers `partner` shows the member now.
    pub fn offers(
        &self,
        merchant: &str,
        member: &str,
        partner: &str,
        now: Timestamp,
    ) -> Result<Vec<Offer>, EngineError> {
        if !crate::sandbox::valid_id(partner) {
            return Err(invalid(
                "/partner",
                "must be 1-64 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        let settings = self.merchant(merchant)?;
        let programme = self.programme(merchant)?;
        let rec = self.load_member(merchant, member)?;
        let config = self.config_text(&settings, &*programme);
        let ctx = Ctx::new(merchant, now, &config, &settings.currency);
        programme
            .offers(
                &mut Session::new(),
                &Self::snapshot(&rec, now),
                partner,
                &ctx,
            )?
            .map_err(|error| EngineError::PluginRefused {
                hook: Hook::Offers,
                error,
            })
    }
}
