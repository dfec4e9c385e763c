//! A message as it goes on the wire: the envelope and the message's bytes
//! as a list of pieces, each beginning at the start of a line. An issue's
//! pieces are made (encoded, dot-stuffed) once and shared by every reader's
//! copy; a reader's copy adds only pieces of its own (its headers, its
//! links). Transports send exactly these bytes, so a DKIM signature made
//! over them covers what the receiver gets.

use std::sync::Arc;

use lettre::address::Envelope;

/// Part of a message, beginning at the start of a line, with the form SMTP
/// carries it in: every line that begins with `.` gets a second one (RFC
/// 5321 §4.5.2), worked out once when the piece is made.
#[derive(Debug)]
pub struct Piece {
    plain: Vec<u8>,
    /// `None` when no line begins with `.`: the wire form is the plain one.
    stuffed: Option<Vec<u8>>,
    /// Whether every octet is 7-bit (else `BODY=8BITMIME` where offered),
    /// found once rather than on every copy that shares the piece.
    ascii: bool,
}

impl Piece {
    /// `plain` must begin at the start of a line of the message.
    pub fn new(plain: Vec<u8>) -> Self {
        let stuffed = needs_stuffing(&plain).then(|| dot_stuff(&plain));
        let ascii = plain.is_ascii();
        Self { plain, stuffed, ascii }
    }

    /// The bytes as they are in the message.
    pub fn plain(&self) -> &[u8] {
        &self.plain
    }

    /// The bytes as they go between `DATA` and the final `.`.
    pub fn wire(&self) -> &[u8] {
        self.stuffed.as_deref().unwrap_or(&self.plain)
    }
}

fn needs_stuffing(plain: &[u8]) -> bool {
    plain.first() == Some(&b'.') || plain.windows(2).any(|w| w == b"\n.")
}

fn dot_stuff(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + 16);
    let mut line_start = true;
    for &b in plain {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out
}

/// A message ready for a transport.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    envelope: Envelope,
    pieces: Vec<Arc<Piece>>,
    len: usize,
}

impl OutgoingMessage {
    /// A message made of `pieces`, in order. Each must begin at the start
    /// of a line: the previous one ends with a line end.
    pub fn new(envelope: Envelope, pieces: Vec<Arc<Piece>>) -> Self {
        debug_assert!(
            pieces
                .windows(2)
                .all(|w| w[0].plain.is_empty() || w[0].plain.ends_with(b"\n")),
            "every piece but the last ends a line"
        );
        let len = pieces.iter().map(|p| p.plain.len()).sum();
        Self { envelope, pieces, len }
    }

    /// A message whose bytes were made in one piece.
    pub fn from_bytes(envelope: Envelope, bytes: Vec<u8>) -> Self {
        Self::new(envelope, vec![Arc::new(Piece::new(bytes))])
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The whole message, as the receiver reads it (for the `.eml` file
    /// transport, and for tests).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for piece in &self.pieces {
            out.extend_from_slice(&piece.plain);
        }
        out
    }

    /// Its size in octets, as SMTP's SIZE extension counts it.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The dot-stuffed pieces to write after `DATA`'s 354, in order. The
    /// end-of-data line follows them: `.\r\n` when [`Self::ends_with_line_end`],
    /// else `\r\n.\r\n`.
    pub fn wire_pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().map(|p| p.wire())
    }

    /// Whether the message is 7-bit throughout.
    pub fn is_ascii(&self) -> bool {
        self.pieces.iter().all(|p| p.ascii)
    }

    pub fn ends_with_line_end(&self) -> bool {
        self.pieces
            .iter()
            .rev()
            .find(|p| !p.plain.is_empty())
            .is_some_and(|p| p.plain.ends_with(b"\r\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_beginning_with_a_dot_get_a_second_one_on_the_wire_only() {
        let piece = Piece::new(b".first\r\nmiddle.\r\n..two\r\n.\r\nlast".to_vec());
        assert_eq!(piece.wire(), b"..first\r\nmiddle.\r\n...two\r\n..\r\nlast");
        assert_eq!(piece.plain(), b".first\r\nmiddle.\r\n..two\r\n.\r\nlast");
        let clean = Piece::new(b"no dots\r\nat line starts.\r\n".to_vec());
        assert_eq!(clean.wire(), clean.plain());
        assert!(clean.stuffed.is_none());
    }

    #[test]
    fn a_message_is_its_pieces_in_order() {
        let envelope = Envelope::new(None, vec!["a@example.org".parse().unwrap()]).unwrap();
        let shared = Arc::new(Piece::new(b"Subject: x\r\n\r\n".to_vec()));
        let own = Arc::new(Piece::new(b".hidden\r\n".to_vec()));
        let message = OutgoingMessage::new(envelope, vec![shared, own]);
        assert_eq!(message.bytes(), b"Subject: x\r\n\r\n.hidden\r\n");
        assert_eq!(message.len(), 23);
        assert!(message.ends_with_line_end());
        let wire: Vec<u8> = message.wire_pieces().flatten().copied().collect();
        assert_eq!(wire, b"Subject: x\r\n\r\n..hidden\r\n");
    }
}
