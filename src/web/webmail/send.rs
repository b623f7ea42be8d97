//! `POST /mail/compose`: send the message (SMTP submission to the engine,
//! then a copy into Sent) or save it as a draft (into Drafts).
//!
//! Owns: the checks between the form and the engine, and how each refusal
//! reads to the user.
//!
//! Invariants:
//! - The CSRF token is checked before anything else is done with the form
//!   (parsing it is needed to find the token; nothing is acted on before).
//! - The sender is always the session's user: no field of the form can
//!   change From or the envelope sender, and the engine applies its own
//!   send-as rule on top (`may_send_as`).
//! - Upload limits are enforced here, server-side: the request size (by
//!   the server, before reading), files and text against `upload_bytes`,
//!   the built message against the engine's limit.
//! - The Sent copy is exactly the bytes the engine accepted (no Bcc), and is
//!   stored only after the engine said 250.
//! - A refused message comes back with everything the user typed; files
//!   uploaded with it are first saved in a draft whose attachments the form
//!   then carries, since a browser cannot be handed files back.
//!
//! Reads untrusted input: yes, the multipart form (via `web::multipart`).

use std::str::FromStr;

use super::compose::{self, carried_attachments, ComposeLimits, ComposeState, Feedback};
use super::pages::{self, Problem};
use super::{Ctx, Webmail};
use crate::mailbox::folders::{DRAFTS, SENT};
use crate::mailbox::submission::{self, SubmitError, Submitter};
use crate::mime::compose::{new_message_id, parse_address_list, Attachment, Outgoing};
use crate::mime::original::clean_id;
use crate::store::MessageId;
use crate::web::csrf;
use crate::web::format;
use crate::web::http::Reply;
use crate::web::multipart::{self, MultipartForm, MAX_PARTS};
use crate::web::session::Session;

/// Longest To, Cc or Bcc field, in bytes.
const MAX_ADDRESS_FIELD: usize = 32 * 1024;
/// Longest subject, in characters.
const MAX_SUBJECT: usize = 1000;
/// Most files attached in one go.
pub const MAX_FILES: usize = 50;

/// `POST /mail/compose`.
pub fn submit(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let limits = ComposeLimits::from_config(&webmail.config);
    if ctx.req.body_too_large {
        let limit = format::size(limits.upload_bytes as u64);
        let message = t.fill("compose.err_request_too_large", &[("limit", &limit)]);
        return pages::problem_saying(ctx.lang, Problem::TooLarge, message, None);
    }
    let content_type = ctx.req.content_type.as_deref().unwrap_or("");
    let form = match multipart::parse(content_type, &ctx.req.body) {
        Ok(form) => form,
        Err(err) => {
            tracing::debug!(%err, "compose form refused");
            return pages::problem(ctx.lang, Problem::BadRequest, None);
        }
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    let Some(state) = state_of(&form) else {
        return pages::problem(ctx.lang, Problem::BadRequest, None);
    };
    let action = form.get("action").unwrap_or("").to_string();
    let uploads: Vec<Attachment> = form
        .files
        .into_iter()
        .filter(|f| f.field == "attachment" && !(f.name.is_empty() && f.data.is_empty()))
        .map(|f| Attachment {
            name: if f.name.is_empty() {
                "attachment".into()
            } else {
                f.name
            },
            content_type: if f.content_type.is_empty() {
                "application/octet-stream".into()
            } else {
                f.content_type
            },
            data: f.data,
        })
        .collect();
    let attempt = Attempt {
        webmail,
        ctx,
        session,
        state,
        uploads,
        limits,
    };
    match action.as_str() {
        "send" => attempt.send(),
        "save" => attempt.save(),
        _ => pages::problem(ctx.lang, Problem::BadRequest, None),
    }
}

/// The form's fields as a `ComposeState`; `None` when a hidden field was
/// tampered with (a message id that is not one).
fn state_of(form: &MultipartForm) -> Option<ComposeState> {
    let id = |key: &str| match form.get(key).map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => MessageId::from_str(text).ok().map(Some),
    };
    let ids = |key: &str| {
        form.get(key)
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|i| clean_id(i.trim_start_matches('<').trim_end_matches('>')))
            .collect::<Vec<_>>()
    };
    let mut keep: Vec<bool> = (0..MAX_PARTS)
        .map(|i| form.get(&format!("keep_{i}")).is_some())
        .collect();
    while keep.last() == Some(&false) {
        keep.pop();
    }
    Some(ComposeState {
        to: form.get("to").unwrap_or("").to_string(),
        cc: form.get("cc").unwrap_or("").to_string(),
        bcc: form.get("bcc").unwrap_or("").to_string(),
        subject: form.get("subject").unwrap_or("").to_string(),
        // Browsers send CRLF; the form shows LF.
        body: form.get("body").unwrap_or("").replace("\r\n", "\n"),
        in_reply_to: ids("in_reply_to").into_iter().next().unwrap_or_default(),
        references: ids("references").join(" "),
        carry_from: id("carry_from")?,
        keep,
        attach_original: id("attach_original")?,
    })
}

/// One POST of the compose form, on its way to the engine or to Drafts.
struct Attempt<'a> {
    webmail: &'a Webmail,
    ctx: &'a Ctx<'a>,
    session: &'a Session,
    state: ComposeState,
    uploads: Vec<Attachment>,
    limits: ComposeLimits,
}

/// Why the form comes back: the message and any per-item details.
struct Refusal {
    status: u16,
    message: String,
    details: Vec<String>,
}

impl Attempt<'_> {
    fn t(&self) -> &'static crate::web::i18n::Catalog {
        self.ctx.lang.catalog()
    }

    fn refusal(&self, status: u16, key: &str, args: &[(&str, &str)]) -> Refusal {
        Refusal {
            status,
            message: self.t().fill(key, args),
            details: Vec::new(),
        }
    }

    /// Checks the form and builds the message (Bcc kept only for drafts).
    fn outgoing(&self, sending: bool) -> Result<Outgoing, Refusal> {
        let s = &self.state;
        let too_long = [&s.to, &s.cc, &s.bcc]
            .iter()
            .any(|f| f.len() > MAX_ADDRESS_FIELD)
            || s.subject.chars().count() > MAX_SUBJECT;
        if too_long {
            return Err(self.refusal(400, "compose.err_too_long", &[]));
        }
        let list = |text: &str| {
            parse_address_list(text)
                .map_err(|bad| self.refusal(400, "compose.err_bad_address", &[("address", &bad)]))
        };
        let (to, cc, bcc) = (list(&s.to)?, list(&s.cc)?, list(&s.bcc)?);
        if self.uploads.len() > MAX_FILES {
            let max = MAX_FILES.to_string();
            return Err(self.refusal(400, "compose.err_too_many_files", &[("max", &max)]));
        }
        let carried = match carried_attachments(self.webmail, &self.session.user, s) {
            Ok(Some(files)) => files,
            Ok(None) => return Err(self.refusal(404, "compose.err_missing_original", &[])),
            Err(err) => {
                tracing::error!(%err, "store failed reading attachments to carry");
                return Err(self.refusal(503, "compose.err_unavailable", &[]));
            }
        };
        let total = s.body.len()
            + carried.iter().map(|f| f.data.len()).sum::<usize>()
            + self.uploads.iter().map(|f| f.data.len()).sum::<usize>();
        if total > self.limits.upload_bytes {
            let limit = format::size(self.limits.upload_bytes as u64);
            return Err(self.refusal(413, "compose.err_upload_too_large", &[("limit", &limit)]));
        }
        let mut message = Outgoing {
            from: self.session.user.clone(),
            to,
            cc,
            bcc,
            subject: s.subject.trim().to_string(),
            text: s.body.clone(),
            in_reply_to: Some(s.in_reply_to.clone()).filter(|i| !i.is_empty()),
            references: s
                .references
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            attachments: carried,
            message_id: new_message_id(&self.webmail.config.node.hostname, self.ctx.now),
            date: self.ctx.now,
        };
        message.attachments.extend(self.uploads.iter().cloned());
        if sending {
            let count = message.recipients().len();
            if count == 0 {
                return Err(self.refusal(400, "compose.err_no_recipients", &[]));
            }
            let max = self.webmail.config.engine.max_recipients;
            if count > max {
                let max = max.to_string();
                return Err(self.refusal(400, "compose.err_too_many", &[("max", &max)]));
            }
        }
        Ok(message)
    }

    /// "Save draft": the message with Bcc into Drafts, then the form again.
    fn save(self) -> Reply {
        let message = match self.outgoing(false) {
            Ok(message) => message,
            Err(refusal) => return self.back(refusal),
        };
        match self
            .webmail
            .store
            .deliver(&self.session.user, DRAFTS, &message.build(true))
        {
            Ok(id) => {
                tracing::info!(user = %self.session.user, draft = %id, "draft saved");
                self.retire_draft();
                Reply::see_other(&format!("{}?draft={id}&saved=1", compose::PATH))
            }
            Err(err) => {
                tracing::error!(%err, "store failed saving a draft");
                let refusal = self.refusal(503, "compose.err_store", &[]);
                self.back(refusal)
            }
        }
    }

    /// "Send": submit to the engine, then keep the same bytes in Sent.
    fn send(self) -> Reply {
        let message = match self.outgoing(true) {
            Ok(message) => message,
            Err(refusal) => return self.back(refusal),
        };
        let raw = message.build(false);
        if raw.len() > self.limits.message_bytes {
            let refusal = self.too_big();
            return self.back(refusal);
        }
        let recipients = message.recipients();
        let result = Submitter::from_config(&self.webmail.config).and_then(|submitter| {
            submitter.submit(&submission::Submission {
                user: &self.session.user,
                sender: &self.session.user,
                recipients: &recipients,
                message: &raw,
            })
        });
        if let Err(err) = result {
            tracing::warn!(user = %self.session.user, %err, "webmail message not sent");
            let refusal = self.explain(err);
            return self.back(refusal);
        }
        tracing::info!(user = %self.session.user, recipients = recipients.len(), size = raw.len(), "webmail message sent");
        // Suggested next time (`directory::contacts`); the mail is sent
        // whatever happens to this bookkeeping.
        if let Err(err) =
            self.webmail
                .directory
                .note_sent_to(&self.session.user, &recipients, self.ctx.now)
        {
            tracing::warn!(%err, "recipients not added to the collected addresses");
        }
        self.retire_draft();
        let copied = match self.webmail.store.deliver(&self.session.user, SENT, &raw) {
            Ok(_) => "1",
            Err(err) => {
                tracing::error!(%err, user = %self.session.user, "sent, but the Sent copy failed");
                "0"
            }
        };
        Reply::see_other(&format!("/mail?folder={SENT}&sent={copied}"))
    }

    /// The draft this form was resumed from is superseded once the message
    /// is sent or saved again: it is deleted (forward sources are not
    /// drafts and stay).
    fn retire_draft(&self) {
        let Some(old) = &self.state.carry_from else {
            return;
        };
        let user = &self.session.user;
        let is_draft = matches!(
            self.webmail.store.message(user, old),
            Ok(Some(m)) if m.summary.folder == DRAFTS
        );
        if is_draft {
            if let Err(err) = self.webmail.store.expunge(user, old) {
                tracing::error!(%err, %user, draft = %old, "could not delete the superseded draft");
            }
        }
    }

    fn too_big(&self) -> Refusal {
        let limit = format::size(self.limits.message_bytes as u64);
        self.refusal(413, "compose.err_too_big", &[("limit", &limit)])
    }

    /// How an engine refusal reads to the user.
    fn explain(&self, err: SubmitError) -> Refusal {
        use submission::Step;
        match err {
            SubmitError::Unavailable(_) => self.refusal(503, "compose.err_unavailable", &[]),
            SubmitError::Refused {
                step: Step::Auth, ..
            } => self.refusal(503, "compose.err_service", &[]),
            SubmitError::Refused { code: 552, .. } => self.too_big(),
            SubmitError::Refused {
                step: Step::Sender,
                code: 553,
                reply,
            } => self.refusal(403, "compose.err_not_yours", &[("reply", &reply)]),
            SubmitError::Refused { reply, .. } => {
                self.refusal(400, "compose.err_refused", &[("reply", &reply)])
            }
            SubmitError::Recipients(refused) => Refusal {
                status: 400,
                message: self.t().get("compose.err_recipients").to_string(),
                details: refused
                    .into_iter()
                    .map(|(address, reply)| format!("{address}: {reply}"))
                    .collect(),
            },
        }
    }

    /// The form again with `refusal`, keeping everything the user typed.
    /// Newly uploaded files are first kept in a draft (see the module
    /// invariants); the form then carries that draft's attachments.
    fn back(self, refusal: Refusal) -> Reply {
        let mut state = self.state.clone();
        let mut notice = None;
        if !self.uploads.is_empty() {
            if let Some(id) = self.keep_as_draft() {
                state.keep = self.kept_count(&id);
                state.carry_from = Some(id);
                state.attach_original = None;
                notice = Some(self.t().get("compose.kept_as_draft").to_string());
            }
        }
        let feedback = Feedback {
            status: refusal.status,
            notice,
            error: Some(refusal.message),
            details: refusal.details,
        };
        compose::render(self.webmail, self.ctx, self.session, &state, feedback)
    }

    /// Everything the form holds, as a draft; `None` if it cannot be saved.
    fn keep_as_draft(&self) -> Option<MessageId> {
        let s = &self.state;
        let lenient = |text: &str| parse_address_list(text).unwrap_or_default();
        let mut attachments = carried_attachments(self.webmail, &self.session.user, s)
            .ok()
            .flatten()
            .unwrap_or_default();
        attachments.extend(self.uploads.iter().cloned());
        let draft = Outgoing {
            from: self.session.user.clone(),
            to: lenient(&s.to),
            cc: lenient(&s.cc),
            bcc: lenient(&s.bcc),
            subject: s.subject.chars().take(MAX_SUBJECT).collect(),
            text: s.body.clone(),
            in_reply_to: Some(s.in_reply_to.clone()).filter(|i| !i.is_empty()),
            references: s
                .references
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            attachments,
            message_id: new_message_id(&self.webmail.config.node.hostname, self.ctx.now),
            date: self.ctx.now,
        };
        match self
            .webmail
            .store
            .deliver(&self.session.user, DRAFTS, &draft.build(true))
        {
            Ok(id) => Some(id),
            Err(err) => {
                tracing::error!(%err, "store failed keeping a refused message as a draft");
                None
            }
        }
    }

    /// Every attachment of the draft `id` ticked.
    fn kept_count(&self, id: &MessageId) -> Vec<bool> {
        let count = compose::load(self.webmail, &self.session.user, id)
            .ok()
            .flatten()
            .map(|raw| crate::mime::original::read(&raw).attachments.len())
            .unwrap_or(0);
        vec![true; count]
    }
}
