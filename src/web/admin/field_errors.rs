//! What is wrong with a staff form, field by field. A page shows each
//! message next to its field and ties it to the field (`aria-invalid`,
//! `aria-describedby`: the macros of `templates/web/admin/fields.html`),
//! as the public signup form does, so a screen reader reads the reason
//! with the field; the first field at fault gets the focus.

/// The messages of a refused form, each for the field (its `id`) it is
/// about, in the form's order.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    /// A form with one thing wrong.
    pub fn one(field: &'static str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What is wrong with `field`, its messages one after the other.
    pub fn get(&self, field: &str) -> Option<String> {
        let messages: Vec<&str> = self
            .0
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, message)| message.as_str())
            .collect();
        (!messages.is_empty()).then(|| messages.join(" "))
    }

    /// Whether `field` is the first one at fault: it gets the focus.
    pub fn is_first(&self, field: &str) -> bool {
        self.0.first().is_some_and(|(f, _)| *f == field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_has_its_own_messages_and_the_first_at_fault_is_known() {
        let mut errors = FieldErrors::default();
        assert!(errors.is_empty() && !errors.is_first("url"));
        errors.add("url", "Address: missing.");
        errors.add("summary", "Summary: too long.");
        errors.add("summary", "Give a summary.");
        assert_eq!(errors.get("url").as_deref(), Some("Address: missing."));
        assert_eq!(
            errors.get("summary").as_deref(),
            Some("Summary: too long. Give a summary.")
        );
        assert_eq!(errors.get("title"), None);
        assert!(errors.is_first("url") && !errors.is_first("summary"));
    }
}
