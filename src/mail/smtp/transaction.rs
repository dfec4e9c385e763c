//! One message's transaction on an open connection: MAIL, RCPT, DATA and
//! the content. With PIPELINING (RFC 2920) the three commands go in one
//! write and their replies are read after it, a round trip instead of
//! three; without it, one command at a time.

use std::fmt::Write as _;

use lettre::address::Envelope;

use super::client::{Client, ClientError, Reply};
use crate::mail::OutgoingMessage;

/// How far a transaction got before it failed: a failure before the
/// message content was written can be retried elsewhere without risking a
/// duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Envelope,
    Content,
}

/// Why one transaction failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server answered with a refusal. The connection is usable after
    /// RSET unless the client marked itself broken (a 421, or a DATA that
    /// could not be taken back).
    Refused(Reply, Stage),
    /// The server refused our sender address (MAIL FROM): no reader's
    /// fault, so never a bounce, and retried until the operator fixes it.
    Sender(Reply),
    /// The relay's SIZE says it would refuse the message: nothing was sent.
    TooBig { size: usize, limit: u64 },
    /// The connection broke or timed out; it cannot be reused.
    Broken(ClientError, Stage),
}

/// Fails at once, before anything is written, when the relay's SIZE says
/// it would refuse `message`.
pub(super) fn check_size(client: &Client, message: &OutgoingMessage) -> Result<(), Failure> {
    match client.extensions().size_limit() {
        Some(limit) if message.len() as u64 > limit => Err(Failure::TooBig {
            size: message.len(),
            limit,
        }),
        _ => Ok(()),
    }
}

/// Sends `message` on `client` and reads the end-of-data reply: the
/// envelope pipelined when the relay offers PIPELINING, else one command
/// at a time. (A driver that pipelines across messages uses the parts:
/// [`envelope_commands`], [`read_envelope_replies`], [`end_of_data`].)
pub(super) async fn send(client: &mut Client, message: &OutgoingMessage) -> Result<(), Failure> {
    check_size(client, message)?;
    let commands = envelope_commands(client, message);
    let broken = |e| Failure::Broken(e, Stage::Envelope);
    if client.extensions().pipelining {
        client
            .write_all(commands.iter().map(|c| c.as_bytes()))
            .await
            .map_err(broken)?;
        read_envelope_replies(client, commands.len()).await?;
    } else {
        for (i, command) in commands.iter().enumerate() {
            client.write_all([command.as_bytes()]).await.map_err(broken)?;
            let reply = client.read_reply().await.map_err(broken)?;
            let is_data = i == commands.len() - 1;
            let accepted = if is_data { reply.code == 354 } else { reply.is_success() };
            if !accepted {
                return Err(refused(i, reply));
            }
        }
    }
    let content = |e| Failure::Broken(e, Stage::Content);
    client
        .write_all(message.wire_pieces().chain([end_of_data(message)]))
        .await
        .map_err(content)?;
    read_end_of_data_reply(client).await
}

/// Reads the replies to `count` pipelined envelope commands (MAIL, the
/// RCPTs, DATA): `Ok` once DATA got its 354, so the content may follow.
pub(super) async fn read_envelope_replies(client: &mut Client, count: usize) -> Result<(), Failure> {
    let broken = |e| Failure::Broken(e, Stage::Envelope);
    // Every reply is read, even after a refusal, so that the next
    // transaction reads its own; only a 421 (the server hangs up) stops
    // the reading.
    let mut refusal = None;
    for i in 0..count {
        let reply = client.read_reply().await.map_err(broken)?;
        if reply.is_closing() {
            return Err(Failure::Refused(reply, Stage::Envelope));
        }
        let is_data = i == count - 1;
        match (is_data, reply.code) {
            (false, code) if (200..300).contains(&code) => {}
            (true, 354) => {
                if let Some(failure) = refusal {
                    // The server waits for a message some recipient was
                    // refused for; ending it would deliver an empty one
                    // to the others. Hanging up discards it.
                    client.mark_broken();
                    return Err(failure);
                }
            }
            _ if refusal.is_some() => {} // the 503/554 that follows a refusal
            _ => refusal = Some(refused(i, reply)),
        }
    }
    match refusal {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// The end-of-data line after `message`'s content.
pub(super) fn end_of_data(message: &OutgoingMessage) -> &'static [u8] {
    if message.ends_with_line_end() {
        b".\r\n"
    } else {
        b"\r\n.\r\n"
    }
}

/// Reads the reply to the end of a message's content.
pub(super) async fn read_end_of_data_reply(client: &mut Client) -> Result<(), Failure> {
    let reply = client
        .read_reply()
        .await
        .map_err(|e| Failure::Broken(e, Stage::Content))?;
    if reply.is_success() {
        Ok(())
    } else {
        Err(Failure::Refused(reply, Stage::Content))
    }
}

/// The failure for a refusal of the `i`th command (MAIL is the first). A
/// 552 (5.3.4) to MAIL answers our SIZE declaration: the message's fault,
/// not the sender's.
fn refused(i: usize, reply: Reply) -> Failure {
    let too_big = reply.code == 552 || reply.enhanced() == Some((5, 3, 4));
    if i == 0 && !reply.is_closing() && !too_big {
        Failure::Sender(reply)
    } else {
        Failure::Refused(reply, Stage::Envelope)
    }
}

/// MAIL FROM (with SIZE, BODY and SMTPUTF8 as the relay offers and the
/// message needs), one RCPT TO per recipient, DATA; each with its line end.
pub(super) fn envelope_commands(client: &Client, message: &OutgoingMessage) -> Vec<String> {
    let extensions = client.extensions();
    let envelope: &Envelope = message.envelope();
    let from: &str = envelope.from().map(|a| a.as_ref()).unwrap_or("");
    let mut mail = String::with_capacity(from.len() + 48);
    mail.push_str("MAIL FROM:<");
    mail.push_str(from);
    mail.push('>');
    if extensions.size.is_some() {
        let _ = write!(mail, " SIZE={}", message.len());
    }
    let non_ascii_addresses = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if extensions.eight_bit_mime && !message.is_ascii() {
        mail.push_str(" BODY=8BITMIME");
    }
    if non_ascii_addresses && extensions.smtp_utf8 {
        mail.push_str(" SMTPUTF8");
    }
    mail.push_str("\r\n");
    let mut commands = vec![mail];
    for recipient in envelope.to() {
        commands.push(format!("RCPT TO:<{}>\r\n", AsRef::<str>::as_ref(recipient)));
    }
    commands.push("DATA\r\n".to_owned());
    commands
}
