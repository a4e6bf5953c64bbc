namespace ControlPlane.SupportDesk;

/// <summary>
/// DDL for the support-desk database. The customers table is intentionally wide and full of PII: the demo's
/// point is that a tool reading <c>SELECT *</c> must never surface those columns to an agent.
/// </summary>
internal static class SupportDeskSchema
{
    /// <summary>Every customers column with its SQLite definition, in table order.</summary>
    public static readonly IReadOnlyList<(string Name, string Definition)> CustomerColumns =
    [
        // Identity
        ("id", "TEXT NOT NULL PRIMARY KEY CHECK (id GLOB 'cust_[A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9][A-Z0-9]')"),
        ("external_ref", "TEXT NOT NULL"),
        ("email", "TEXT NOT NULL UNIQUE COLLATE NOCASE"),
        ("email_verified", "INTEGER NOT NULL"),
        ("secondary_email", "TEXT"),
        ("billing_email", "TEXT"),
        ("phone", "TEXT"),
        ("mobile_phone", "TEXT"),
        ("phone_verified", "INTEGER NOT NULL"),
        ("title", "TEXT"),
        ("first_name", "TEXT NOT NULL"),
        ("middle_name", "TEXT"),
        ("last_name", "TEXT NOT NULL"),
        ("full_name", "TEXT NOT NULL"),
        ("date_of_birth", "TEXT"),
        ("gender", "TEXT"),
        ("nationality", "TEXT"),
        ("preferred_language", "TEXT NOT NULL"),
        ("timezone", "TEXT NOT NULL"),

        // Addresses
        ("address_line1", "TEXT"),
        ("address_line2", "TEXT"),
        ("city", "TEXT"),
        ("county", "TEXT"),
        ("postcode", "TEXT"),
        ("country", "TEXT NOT NULL"),
        ("region", "TEXT NOT NULL"),
        ("billing_address_line1", "TEXT"),
        ("billing_city", "TEXT"),
        ("billing_postcode", "TEXT"),
        ("billing_country", "TEXT"),
        ("shipping_address_line1", "TEXT"),
        ("shipping_city", "TEXT"),
        ("shipping_postcode", "TEXT"),
        ("shipping_country", "TEXT"),

        // Company
        ("company_name", "TEXT"),
        ("job_title", "TEXT"),
        ("company_size", "TEXT"),
        ("industry", "TEXT"),
        ("vat_number", "TEXT"),
        ("tax_id", "TEXT"),

        // Subscription
        ("plan", "TEXT NOT NULL"),
        ("plan_interval", "TEXT NOT NULL"),
        ("seats", "INTEGER NOT NULL"),
        ("signup_date", "TEXT NOT NULL"),
        ("signup_source", "TEXT"),
        ("signup_ip", "TEXT"),
        ("referral_code", "TEXT"),
        ("referred_by", "TEXT"),
        ("has_active_subscription", "INTEGER NOT NULL"),
        ("subscription_id", "TEXT"),
        ("subscription_started_at", "TEXT"),
        ("subscription_renews_at", "TEXT"),
        ("trial_ends_at", "TEXT"),
        ("cancelled_at", "TEXT"),
        ("cancellation_reason", "TEXT"),

        // Health and value
        ("churn_risk_band", "TEXT NOT NULL CHECK (churn_risk_band IN ('low', 'medium', 'high'))"),
        ("churn_risk_score", "REAL NOT NULL"),
        ("nps_score", "INTEGER"),
        ("health_score", "INTEGER"),
        ("lifetime_value_cents", "INTEGER NOT NULL"),
        ("mrr_cents", "INTEGER NOT NULL"),
        ("currency", "TEXT NOT NULL"),
        ("outstanding_balance_cents", "INTEGER NOT NULL"),
        ("credit_balance_cents", "INTEGER NOT NULL"),

        // Payment
        ("payment_method", "TEXT"),
        ("card_brand", "TEXT"),
        ("card_last4", "TEXT"),
        ("card_exp_month", "INTEGER"),
        ("card_exp_year", "INTEGER"),
        ("card_fingerprint", "TEXT"),
        ("iban_last4", "TEXT"),
        ("bank_name", "TEXT"),
        ("payment_provider_customer_id", "TEXT"),
        ("invoice_count", "INTEGER NOT NULL"),
        ("last_invoice_at", "TEXT"),
        ("failed_payment_count", "INTEGER NOT NULL"),

        // Support
        ("support_tier", "TEXT NOT NULL"),
        ("account_manager", "TEXT"),
        ("support_pin", "TEXT"),
        ("open_ticket_count", "INTEGER NOT NULL"),
        ("last_ticket_at", "TEXT"),
        ("csat_avg", "REAL"),

        // Marketing and consent
        ("marketing_opt_in_email", "INTEGER NOT NULL"),
        ("marketing_opt_in_sms", "INTEGER NOT NULL"),
        ("marketing_opt_in_post", "INTEGER NOT NULL"),
        ("newsletter_frequency", "TEXT"),
        ("consent_updated_at", "TEXT"),
        ("gdpr_erasure_requested", "INTEGER NOT NULL"),

        // Access
        ("last_login_at", "TEXT"),
        ("last_login_ip", "TEXT"),
        ("user_agent", "TEXT"),
        ("login_count", "INTEGER NOT NULL"),
        ("mfa_enabled", "INTEGER NOT NULL"),
        ("password_updated_at", "TEXT"),

        // Social and free text
        ("avatar_url", "TEXT"),
        ("social_handle", "TEXT"),
        ("linkedin_url", "TEXT"),
        ("notes", "TEXT"),
        ("tags_json", "TEXT NOT NULL"),

        // Risk and compliance
        ("kyc_status", "TEXT NOT NULL"),
        ("kyc_verified_at", "TEXT"),
        ("fraud_score", "REAL NOT NULL"),
        ("risk_flags_json", "TEXT NOT NULL"),
        ("is_test_account", "INTEGER NOT NULL"),

        // Bookkeeping
        ("created_at", "TEXT NOT NULL"),
        ("updated_at", "TEXT NOT NULL"),
        ("deleted_at", "TEXT"),
    ];

    public static string CreateCustomersTable =>
        "CREATE TABLE IF NOT EXISTS customers (\n  "
        + string.Join(",\n  ", CustomerColumns.Select(static c => c.Name + " " + c.Definition))
        + "\n) STRICT;";

    public const string CreateOrdersTable = """
        CREATE TABLE IF NOT EXISTS orders (
          id TEXT NOT NULL PRIMARY KEY,
          customer_id TEXT NOT NULL REFERENCES customers (id),
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
          total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
          currency TEXT NOT NULL,
          items_json TEXT NOT NULL,
          shipping_address TEXT,
          payment_reference TEXT
        ) STRICT;
        CREATE INDEX IF NOT EXISTS ix_orders_customer_created ON orders (customer_id, created_at DESC);
        """;

    // The CHECK constraints mirror the tool's validation so a bug in the tool layer still cannot write a bad refund.
    public const string CreateRefundsTable = """
        CREATE TABLE IF NOT EXISTS refunds (
          id TEXT NOT NULL PRIMARY KEY,
          customer_id TEXT NOT NULL REFERENCES customers (id),
          amount_cents INTEGER NOT NULL CHECK (amount_cents BETWEEN 1 AND 1000000),
          reason TEXT NOT NULL CHECK (reason IN ('duplicate', 'fraud', 'requested', 'error')),
          status TEXT NOT NULL,
          created_at TEXT NOT NULL,
          mcp_request_id TEXT,
          mcp_client_name TEXT
        ) STRICT;
        CREATE INDEX IF NOT EXISTS ix_refunds_customer ON refunds (customer_id, created_at DESC);
        """;

    // Records that seeding ran, so a restart never re-seeds even if an operator later empties the customers table.
    public const string CreateMetaTable = """
        CREATE TABLE IF NOT EXISTS support_desk_meta (
          key TEXT NOT NULL PRIMARY KEY,
          value TEXT NOT NULL
        ) STRICT;
        """;

    public const string SeedMarkerKey = "seed_version";
    public const string SeedVersion = "1";
}
