//! What seeded people are called and what they write: names, products,
//! ticket subjects, and the lines of customers, agents, notes and the bot,
//! put together into plausible messages.

use super::rng::Rng;

pub(super) const FIRST_NAMES: &[&str] = &[
    "Maria", "Jonas", "Aisha", "Pedro", "Yuki", "Olga", "Samuel", "Fatima", "Liam", "Chen",
    "Ingrid", "Mateo", "Priya", "Tomasz", "Amara", "Lucas", "Sofia", "Kwame", "Elena", "Noah",
    "Hana", "Omar", "Clara", "Diego", "Freya", "Ravi", "Zoe", "Ivan", "Leila", "Hugo",
];
pub(super) const LAST_NAMES: &[&str] = &[
    "Keller", "Okafor", "Silva", "Tanaka", "Novak", "Haddad", "Brown", "Müller", "Rossi", "Kim",
    "Dubois", "Larsen", "Patel", "Kowalski", "Mensah", "Garcia", "Nguyen", "Ivanova", "Cohen",
    "Moreau", "Andersen", "Costa", "Yilmaz", "Walsh", "Fischer", "Sato", "Romero", "Berg",
];
const PRODUCTS: &[&str] = &[
    "printer",
    "coffee machine",
    "headphones",
    "router",
    "vacuum cleaner",
    "phone case",
    "desk lamp",
    "keyboard",
    "smart watch",
    "blender",
    "e-reader",
    "monitor",
];
/// `{n}` is an order number, `{p}` a product.
const SUBJECTS: &[&str] = &[
    "Order {n} has not arrived",
    "Refund for order {n}",
    "Cannot log in to my account",
    "Password reset email never arrives",
    "Invoice for order {n} shows the wrong amount",
    "My {p} stopped working after the update",
    "Wrong size delivered in order {n}",
    "How do I change my delivery address?",
    "Charged twice for order {n}",
    "The {p} arrived damaged",
    "Warranty question about my {p}",
    "Please cancel my subscription",
    "Discount code not accepted at checkout",
    "App crashes when I open the cart",
    "Missing item in order {n}",
    "Where can I download the manual for the {p}?",
    "Return label for order {n}",
    "The {p} makes a strange noise",
];
pub(super) const CUSTOMER_LINES: &[&str] = &[
    "I ordered it two weeks ago and the tracking page has not changed since.",
    "Could you please check what is going on?",
    "I already tried restarting it twice, without any luck.",
    "The confirmation email says it was delivered, but nothing came.",
    "This is the second time this happens and I am getting a bit frustrated.",
    "I attached a photo of the box as it arrived.",
    "My neighbour did not receive anything either.",
    "Can I get a replacement instead of a refund?",
    "Thanks for the quick answer!",
    "That did not help, the problem is still there.",
    "I need this sorted out before the end of the month, please.",
    "It worked fine until yesterday evening.",
    "Is there a phone number I can call instead?",
    "Ok, I will try that and let you know.",
    "Still nothing. What are the next steps?",
];
pub(super) const AGENT_LINES: &[&str] = &[
    "Thanks for reaching out, and sorry for the trouble.",
    "I have checked your order and can see the parcel is with the carrier.",
    "Could you send me the serial number from the back of the device?",
    "I have issued a refund; it shows on your statement within 5 working days.",
    "A replacement is on its way; you will get a tracking link by email.",
    "Please try a factory reset: hold the power button for ten seconds.",
    "I have escalated this to our warehouse team and will update you tomorrow.",
    "Your account is unlocked now; you can log in again.",
    "Let me know if there is anything else I can do.",
    "I am closing this ticket for now; reply here if the problem comes back.",
    "The discount code expired last week, but I applied the discount manually.",
    "Could you confirm the delivery address we should use?",
];
pub(super) const NOTES: &[&str] = &[
    "Customer has had three late deliveries this year; offer a voucher.",
    "Carrier confirmed the parcel is lost. Refund approved by the team lead.",
    "Checked the logs: two payments went through, one is pending reversal.",
    "Known firmware issue, see the engineering ticket.",
    "Asked the warehouse to check stock before promising a replacement.",
    "VIP customer, keep the tone extra careful.",
];
pub(super) const BOT_ANSWERS: &[&str] = &[
    "You can follow your delivery from the link in your confirmation email. If it is late, give us your order number and we will look into it.",
    "You can ask for a refund within 30 days of purchase. Tell us your order number and a person will take it from there.",
    "Use \"Forgot password\" on the login page; we send you a link that works once within an hour.",
    "Sorry, I did not understand that. Could you say it in other words?",
];
pub(super) const HANDOFF_ASKS: &[&str] = &[
    "I want to talk to a person",
    "human please",
    "Can I speak to someone?",
    "That does not answer my question, talk to an agent",
];

/// One to `most` different lines, in a random order.
pub(super) fn sentences(rng: &mut Rng, lines: &[&str], most: u64) -> String {
    let n = (1 + rng.below(most)).min(lines.len() as u64);
    let mut chosen: Vec<&str> = Vec::new();
    while (chosen.len() as u64) < n {
        let line = *rng.pick(lines);
        if !chosen.contains(&line) {
            chosen.push(line);
        }
    }
    chosen.join(" ")
}

pub(super) fn subject(rng: &mut Rng) -> String {
    let template = *rng.pick(SUBJECTS);
    let order = 100_000 + rng.below(900_000);
    let product = *rng.pick(PRODUCTS);
    template
        .replace("{n}", &order.to_string())
        .replace("{p}", product)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_fill_their_placeholders() {
        let mut rng = Rng(7);
        for _ in 0..100 {
            let s = subject(&mut rng);
            assert!(!s.contains('{'), "{s}");
        }
    }
}
