using System.Globalization;

namespace ControlPlane.SupportDesk;

/// <summary>
/// Deterministic demo data. A fixed <see cref="Random"/> seed drives the non-identifying attributes, while every PII
/// value embeds the customer's index so it is unique and recognisable: a leak test can search the tool output for
/// each value and attribute any hit to exactly one customer and column.
/// </summary>
internal static class SupportDeskSeed
{
    public const int CustomerCount = 50;
    public const string DemoCustomerId = "cust_DEMO00000001";
    public const string DemoCustomerEmail = "ada@example.com";

    private const int RandomSeed = 20_250_101;
    private const string IdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    private static readonly DateTime Epoch = new(2019, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static readonly string[] FirstNames =
    [
        "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Edsger", "Frances", "Tim",
        "Radia", "Ken", "Hedy", "Donald", "Sophie", "Guido", "Annie", "John", "Jean", "Niklaus",
        "Mary", "Bjarne", "Evelyn", "James", "Karen",
    ];

    private static readonly string[] LastNames =
    [
        "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Dijkstra", "Allen", "Berners-Lee",
        "Perlman", "Thompson", "Lamarr", "Knuth", "Wilson", "van Rossum", "Easley", "Backus", "Bartik", "Wirth",
        "Keller", "Stroustrup", "Boyd", "Gosling", "Sparck-Jones", "Goldberg",
    ];

    private static readonly string[] MiddleNames = ["Elise", "Rowan", "Marguerite", "Tobias", "Ines", "Casimir", "Odette", "Florian"];

    private static readonly string[] Streets =
    [
        "Analytical Engine Lane", "Difference Row", "Babbage Crescent", "Jacquard Mews", "Punchcard Close",
        "Colossus Way", "Bletchley Gardens", "Enigma Street", "Mercury Delay Road", "Valve Terrace",
    ];

    private static readonly (string City, string County, string PostcodePrefix, string Country, string Region, string Currency, string Language, string TimeZone)[] Locations =
    [
        ("Manchester", "Greater Manchester", "M", "GB", "eu-west", "GBP", "en-GB", "Europe/London"),
        ("Leeds", "West Yorkshire", "LS", "GB", "eu-west", "GBP", "en-GB", "Europe/London"),
        ("Dublin", "County Dublin", "D", "IE", "eu-west", "EUR", "en-IE", "Europe/Dublin"),
        ("Berlin", "Berlin", "10", "DE", "eu-central", "EUR", "de-DE", "Europe/Berlin"),
        ("Lyon", "Rhone", "69", "FR", "eu-central", "EUR", "fr-FR", "Europe/Paris"),
        ("Utrecht", "Utrecht", "35", "NL", "eu-central", "EUR", "nl-NL", "Europe/Amsterdam"),
        ("Boston", "Suffolk", "021", "US", "us-east", "USD", "en-US", "America/New_York"),
        ("Portland", "Multnomah", "972", "US", "us-west", "USD", "en-US", "America/Los_Angeles"),
        ("Toronto", "Ontario", "M5", "CA", "us-east", "CAD", "en-CA", "America/Toronto"),
        ("Melbourne", "Victoria", "30", "AU", "ap-southeast", "AUD", "en-AU", "Australia/Melbourne"),
    ];

    private static readonly string[] Plans = ["free", "starter", "pro", "business", "enterprise"];
    private static readonly string[] RiskBands = ["low", "medium", "high"];
    private static readonly string[] CardBrands = ["visa", "mastercard", "amex"];
    private static readonly string[] Banks = ["Northwind Bank", "Contoso Savings", "Fabrikam Credit Union", "Tailspin Mutual"];
    private static readonly string[] Industries = ["software", "retail", "healthcare", "education", "logistics", "finance"];
    private static readonly string[] JobTitles = ["CTO", "Head of Operations", "Procurement Lead", "Founder", "IT Manager", "Finance Director"];
    private static readonly string[] AccountManagers = ["Priya Natarajan", "Tomasz Kowalczyk", "Amara Okafor", "Lucia Ferraro"];
    private static readonly string[] SignupSources = ["organic", "paid_search", "partner", "referral", "event"];
    private static readonly string[] OrderStatuses = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"];
    private static readonly string[] Products =
    [
        "SKU-SEAT-ADDON|Additional seat", "SKU-STORAGE-100|Storage pack 100 GB", "SKU-SUPPORT-PRIO|Priority support",
        "SKU-TRAINING-1D|Training day", "SKU-API-BOOST|API rate boost",
    ];

    private static readonly string[] UserAgents =
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    ];

    /// <summary>A seeded customer row keyed by column name, plus its orders.</summary>
    public sealed record SeedCustomer(IReadOnlyDictionary<string, object?> Row, IReadOnlyList<IReadOnlyDictionary<string, object?>> Orders);

    /// <summary>Builds the full, deterministic seed set: the demo customer first, then generated ones.</summary>
    public static IReadOnlyList<SeedCustomer> Build()
    {
        var random = new Random(RandomSeed);
        var customers = new List<SeedCustomer>(CustomerCount) { BuildDemoCustomer() };
        var usedIds = new HashSet<string>(StringComparer.Ordinal) { DemoCustomerId };

        for (var i = 1; i < CustomerCount; i++)
        {
            string id;
            do
            {
                id = "cust_" + RandomToken(random, 12);
            }
            while (!usedIds.Add(id));

            customers.Add(BuildGeneratedCustomer(i, id, random, customers));
        }

        return customers;
    }

    private static SeedCustomer BuildDemoCustomer()
    {
        var row = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = DemoCustomerId,
            ["external_ref"] = "CRM-181512",
            ["email"] = DemoCustomerEmail,
            ["email_verified"] = 1,
            ["secondary_email"] = "countess.lovelace@analytical.test",
            ["billing_email"] = "accounts@lovelace-engines.test",
            ["phone"] = "+44 20 7946 0958",
            ["mobile_phone"] = "+44 7700 900815",
            ["phone_verified"] = 1,
            ["title"] = "Countess",
            ["first_name"] = "Ada",
            ["middle_name"] = "Augusta",
            ["last_name"] = "Lovelace",
            ["full_name"] = "Augusta Ada Lovelace",
            ["date_of_birth"] = "1985-12-10",
            ["gender"] = "female",
            ["nationality"] = "GB",
            ["preferred_language"] = "en-GB",
            ["timezone"] = "Europe/London",
            ["address_line1"] = "12 Ockham Park Row",
            ["address_line2"] = "Flat 3B",
            ["city"] = "Marylebone",
            ["county"] = "Greater London",
            ["postcode"] = "W1U 8QZ",
            ["country"] = "GB",
            ["region"] = "eu-west",
            ["billing_address_line1"] = "Lovelace Engines Ltd, 7 Difference Quay",
            ["billing_city"] = "Southwark",
            ["billing_postcode"] = "SE1 9RT",
            ["billing_country"] = "GB",
            ["shipping_address_line1"] = "Horsley Towers Gatehouse, Ockham Road",
            ["shipping_city"] = "East Horsley",
            ["shipping_postcode"] = "KT24 6QT",
            ["shipping_country"] = "GB",
            ["company_name"] = "Lovelace Engines Ltd",
            ["job_title"] = "Principal Analyst",
            ["company_size"] = "51-200",
            ["industry"] = "software",
            ["vat_number"] = "GB815121027",
            ["tax_id"] = "UTR-5550101815",
            ["plan"] = "enterprise",
            ["plan_interval"] = "annual",
            ["seats"] = 120,
            ["signup_date"] = "2019-03-14",
            ["signup_source"] = "partner",
            ["signup_ip"] = "203.0.113.77",
            ["referral_code"] = "REF-NOTEG-1843",
            ["referred_by"] = null,
            ["has_active_subscription"] = 1,
            ["subscription_id"] = "sub_ADAENGINE2019",
            ["subscription_started_at"] = "2019-03-14T09:12:44Z",
            ["subscription_renews_at"] = "2026-03-14T09:12:44Z",
            ["trial_ends_at"] = null,
            ["cancelled_at"] = null,
            ["cancellation_reason"] = null,
            ["churn_risk_band"] = "low",
            ["churn_risk_score"] = 0.07,
            ["nps_score"] = 10,
            ["health_score"] = 93,
            ["lifetime_value_cents"] = 18_432_077L,
            ["mrr_cents"] = 289_900L,
            ["currency"] = "GBP",
            ["outstanding_balance_cents"] = 0L,
            ["credit_balance_cents"] = 12_345L,
            ["payment_method"] = "card",
            ["card_brand"] = "visa",
            ["card_last4"] = "3141",
            ["card_exp_month"] = 11,
            ["card_exp_year"] = 2028,
            ["card_fingerprint"] = "fp_ADA0LOVELACE815",
            ["iban_last4"] = "2718",
            ["bank_name"] = "Analytical Bank of London",
            ["payment_provider_customer_id"] = "pcus_LOVELACE1843ADA",
            ["invoice_count"] = 71,
            ["last_invoice_at"] = "2025-02-14T00:00:00Z",
            ["failed_payment_count"] = 0,
            ["support_tier"] = "platinum",
            ["account_manager"] = "Mary Somerville",
            ["support_pin"] = "918273",
            ["open_ticket_count"] = 1,
            ["last_ticket_at"] = "2025-01-09T16:20:00Z",
            ["csat_avg"] = 4.9,
            ["marketing_opt_in_email"] = 1,
            ["marketing_opt_in_sms"] = 0,
            ["marketing_opt_in_post"] = 0,
            ["newsletter_frequency"] = "monthly",
            ["consent_updated_at"] = "2024-06-01T12:00:00Z",
            ["gdpr_erasure_requested"] = 0,
            ["last_login_at"] = "2025-02-27T07:45:13Z",
            ["last_login_ip"] = "198.51.100.201",
            ["user_agent"] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AnalyticalEngine/1843 Safari/605.1.15",
            ["login_count"] = 1843,
            ["mfa_enabled"] = 1,
            ["password_updated_at"] = "2024-11-05T18:02:09Z",
            ["avatar_url"] = "https://cdn.example.com/avatars/ada-lovelace-portrait.png",
            ["social_handle"] = "@enchantress_of_numbers",
            ["linkedin_url"] = "https://www.linkedin.com/in/ada-lovelace-notes-g",
            ["notes"] = "VIP. Spoke with Ada on 2025-01-09; verified DOB 1985-12-10 and callback number +44 7700 900815. "
                + "Home alarm code 7781. Partner William King may call on her behalf; never discuss the Bernoulli invoice with him.",
            ["tags_json"] = """["vip","design-partner","beta:analytical-engine"]""",
            ["kyc_status"] = "verified",
            ["kyc_verified_at"] = "2019-03-15T10:00:00Z",
            ["fraud_score"] = 0.01,
            ["risk_flags_json"] = "[]",
            ["is_test_account"] = 0,
            ["created_at"] = "2019-03-14T09:12:44Z",
            ["updated_at"] = "2025-02-27T07:45:13Z",
            ["deleted_at"] = null,
        };

        IReadOnlyList<IReadOnlyDictionary<string, object?>> orders =
        [
            Order("ord_DEMO00000001", DemoCustomerId, "2024-01-15T10:30:00Z", "delivered", "GBP", [("SKU-SEAT-ADDON", "Additional seat", 3, 4300)], "12 Ockham Park Row, W1U 8QZ", "pay_ADA0001"),
            Order("ord_DEMO00000002", DemoCustomerId, "2024-03-02T14:05:00Z", "delivered", "GBP", [("SKU-TRAINING-1D", "Training day", 1, 4500)], "12 Ockham Park Row, W1U 8QZ", "pay_ADA0002"),
            Order("ord_DEMO00000003", DemoCustomerId, "2024-05-20T08:45:00Z", "shipped", "GBP", [("SKU-STORAGE-100", "Storage pack 100 GB", 1, 19999), ("SKU-API-BOOST", "API rate boost", 1, 4000)], "Horsley Towers Gatehouse, KT24 6QT", "pay_ADA0003"),
        ];

        return new SeedCustomer(row, orders);
    }

    private static SeedCustomer BuildGeneratedCustomer(int i, string id, Random random, List<SeedCustomer> earlier)
    {
        // first = i mod 25 and last = 7i+3 mod 26 are jointly unique for i < 650 (coprime moduli), so full names never repeat.
        var first = FirstNames[i % FirstNames.Length];
        var last = LastNames[(7 * i + 3) % LastNames.Length];
        var middle = random.Next(3) == 0 ? null : MiddleNames[random.Next(MiddleNames.Length)];
        var slug = (first + "." + last).Replace(" ", string.Empty, StringComparison.Ordinal).ToLowerInvariant();
        var location = Locations[random.Next(Locations.Length)];
        var street = Streets[random.Next(Streets.Length)];

        var plan = Plans[random.Next(Plans.Length)];
        var isPaid = plan != "free";
        var active = isPaid && random.Next(5) != 0;
        var signup = Epoch.AddDays(random.Next(0, 1800)).AddSeconds(random.Next(0, 86_400));
        var lastLogin = signup.AddDays(random.Next(1, 400)).AddSeconds(random.Next(0, 86_400));
        var dateOfBirth = new DateTime(1950, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddDays((i * 397) + random.Next(0, 300));
        var seats = isPaid ? random.Next(1, 250) : 1;
        var mrr = isPaid ? seats * (long)random.Next(800, 4_000) : 0L;
        var riskBand = RiskBands[random.Next(RiskBands.Length)];
        var company = random.Next(2) == 0 ? null : $"{last} {Industries[i % Industries.Length]} Co {i:D2}";
        var hasCard = isPaid && random.Next(4) != 0;
        var referrer = earlier.Count > 1 && random.Next(4) == 0 ? (string)earlier[random.Next(earlier.Count)].Row["id"]! : null;
        var mobile = $"+44 7700 900{100 + i:D3}";

        var row = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = id,
            ["external_ref"] = $"CRM-{100_000 + (i * 37):D6}",
            ["email"] = $"{slug}.{i:D2}@example.org",
            ["email_verified"] = random.Next(5) == 0 ? 0 : 1,
            ["secondary_email"] = $"{slug}.home{1900 + i}@mailbox.test",
            ["billing_email"] = $"billing+{slug}{i:D2}@invoices.test",
            ["phone"] = $"+44 20 7946 0{100 + i:D3}",
            ["mobile_phone"] = mobile,
            ["phone_verified"] = random.Next(2),
            ["title"] = random.Next(4) switch { 0 => "Dr", 1 => "Ms", 2 => "Mr", _ => "Mx" },
            ["first_name"] = first,
            ["middle_name"] = middle,
            ["last_name"] = last,
            ["full_name"] = middle is null ? $"{first} {last}" : $"{first} {middle} {last}",
            ["date_of_birth"] = Date(dateOfBirth),
            ["gender"] = random.Next(3) switch { 0 => "female", 1 => "male", _ => "undisclosed" },
            ["nationality"] = location.Country,
            ["preferred_language"] = location.Language,
            ["timezone"] = location.TimeZone,
            ["address_line1"] = $"{20 + i} {street}",
            ["address_line2"] = random.Next(2) == 0 ? null : $"Unit {i}{(char)('A' + (i % 6))}",
            ["city"] = location.City,
            ["county"] = location.County,
            ["postcode"] = $"{location.PostcodePrefix}{i:D2} {(char)('A' + (i % 26))}{(char)('A' + ((i * 7) % 26))}",
            ["country"] = location.Country,
            ["region"] = location.Region,
            ["billing_address_line1"] = company is null ? $"{20 + i} {street}" : $"{company}, PO Box {4000 + i}",
            ["billing_city"] = location.City,
            ["billing_postcode"] = $"{location.PostcodePrefix}{i:D2} {(char)('A' + (i % 26))}{(char)('A' + ((i * 7) % 26))}",
            ["billing_country"] = location.Country,
            ["shipping_address_line1"] = $"Dock {i}, {street} Depot",
            ["shipping_city"] = location.City,
            ["shipping_postcode"] = $"{location.PostcodePrefix}{i:D2} S{(char)('A' + (i % 26))}",
            ["shipping_country"] = location.Country,
            ["company_name"] = company,
            ["job_title"] = company is null ? null : JobTitles[random.Next(JobTitles.Length)],
            ["company_size"] = company is null ? null : random.Next(3) switch { 0 => "1-10", 1 => "11-50", _ => "51-200" },
            ["industry"] = company is null ? null : Industries[i % Industries.Length],
            ["vat_number"] = company is null ? null : $"VAT{location.Country}{300_000_000 + (i * 7_919)}",
            ["tax_id"] = $"TIN-{location.Country}-{7_000_000_000L + (i * 104_729L)}",
            ["plan"] = plan,
            ["plan_interval"] = random.Next(2) == 0 ? "monthly" : "annual",
            ["seats"] = seats,
            ["signup_date"] = Date(signup),
            ["signup_source"] = SignupSources[random.Next(SignupSources.Length)],
            ["signup_ip"] = $"203.0.113.{100 + i}",
            ["referral_code"] = $"REF-{first.ToUpperInvariant()}-{i:D3}",
            ["referred_by"] = referrer,
            ["has_active_subscription"] = active ? 1 : 0,
            ["subscription_id"] = isPaid ? "sub_" + RandomToken(random, 12) : null,
            ["subscription_started_at"] = isPaid ? Timestamp(signup.AddDays(random.Next(0, 30))) : null,
            ["subscription_renews_at"] = active ? Timestamp(signup.AddDays(365 * random.Next(6, 8))) : null,
            ["trial_ends_at"] = Timestamp(signup.AddDays(14)),
            ["cancelled_at"] = isPaid && !active ? Timestamp(lastLogin) : null,
            ["cancellation_reason"] = isPaid && !active ? "budget" : null,
            ["churn_risk_band"] = riskBand,
            ["churn_risk_score"] = Math.Round(riskBand switch { "low" => 0.05, "medium" => 0.35, _ => 0.7 } + (random.NextDouble() * 0.25), 3),
            ["nps_score"] = random.Next(0, 11),
            ["health_score"] = random.Next(20, 100),
            ["lifetime_value_cents"] = mrr * random.Next(1, 60),
            ["mrr_cents"] = mrr,
            ["currency"] = location.Currency,
            ["outstanding_balance_cents"] = random.Next(6) == 0 ? (long)random.Next(1_000, 90_000) : 0L,
            ["credit_balance_cents"] = (long)random.Next(0, 5_000),
            ["payment_method"] = !isPaid ? null : hasCard ? "card" : "sepa_debit",
            ["card_brand"] = hasCard ? CardBrands[random.Next(CardBrands.Length)] : null,
            // Multiplying by a number coprime with 9000 makes the four-digit values unique across customers.
            ["card_last4"] = hasCard ? ((((i * 7_919) + 1_234) % 9_000) + 1_000).ToString(CultureInfo.InvariantCulture) : null,
            ["card_exp_month"] = hasCard ? random.Next(1, 13) : null,
            ["card_exp_year"] = hasCard ? random.Next(2026, 2031) : null,
            ["card_fingerprint"] = hasCard ? "fp_" + RandomToken(random, 16) : null,
            ["iban_last4"] = isPaid && !hasCard ? ((((i * 6_007) + 5_011) % 9_000) + 1_000).ToString(CultureInfo.InvariantCulture) : null,
            ["bank_name"] = isPaid && !hasCard ? Banks[random.Next(Banks.Length)] : null,
            ["payment_provider_customer_id"] = isPaid ? "pcus_" + RandomToken(random, 14) : null,
            ["invoice_count"] = isPaid ? random.Next(1, 72) : 0,
            ["last_invoice_at"] = isPaid ? Timestamp(lastLogin.AddDays(-random.Next(0, 30))) : null,
            ["failed_payment_count"] = isPaid ? random.Next(0, 4) : 0,
            ["support_tier"] = plan switch { "enterprise" => "platinum", "business" => "gold", "pro" => "silver", _ => "standard" },
            ["account_manager"] = plan is "enterprise" or "business" ? AccountManagers[random.Next(AccountManagers.Length)] : null,
            ["support_pin"] = (100_000 + ((i * 15_485) % 900_000)).ToString(CultureInfo.InvariantCulture),
            ["open_ticket_count"] = random.Next(0, 4),
            ["last_ticket_at"] = random.Next(3) == 0 ? null : Timestamp(lastLogin.AddDays(-random.Next(0, 90))),
            ["csat_avg"] = Math.Round(2.5 + (random.NextDouble() * 2.5), 2),
            ["marketing_opt_in_email"] = random.Next(2),
            ["marketing_opt_in_sms"] = random.Next(2),
            ["marketing_opt_in_post"] = random.Next(2),
            ["newsletter_frequency"] = random.Next(3) switch { 0 => "weekly", 1 => "monthly", _ => null },
            ["consent_updated_at"] = Timestamp(signup.AddDays(random.Next(0, 500))),
            ["gdpr_erasure_requested"] = random.Next(25) == 0 ? 1 : 0,
            ["last_login_at"] = Timestamp(lastLogin),
            ["last_login_ip"] = $"198.51.100.{100 + i}",
            ["user_agent"] = UserAgents[random.Next(UserAgents.Length)],
            ["login_count"] = random.Next(1, 2_000),
            ["mfa_enabled"] = random.Next(2),
            ["password_updated_at"] = Timestamp(lastLogin.AddDays(-random.Next(0, 200))),
            ["avatar_url"] = $"https://cdn.example.com/avatars/{slug}-{i:D2}.png",
            ["social_handle"] = $"@{slug.Replace(".", "_", StringComparison.Ordinal)}{i:D2}",
            ["linkedin_url"] = $"https://www.linkedin.com/in/{slug.Replace('.', '-')}-{i:D2}",
            ["notes"] = $"Spoke with {first} {last} on {Date(lastLogin)}; confirmed DOB {Date(dateOfBirth)} and callback number {mobile}. "
                + $"Prefers contact before {8 + (i % 10)}am; door code {1000 + (i * 73)}.",
            ["tags_json"] = riskBand == "high" ? """["at-risk"]""" : "[]",
            ["kyc_status"] = isPaid ? "verified" : "not_required",
            ["kyc_verified_at"] = isPaid ? Timestamp(signup.AddDays(1)) : null,
            ["fraud_score"] = Math.Round(random.NextDouble() * 0.3, 3),
            ["risk_flags_json"] = random.Next(10) == 0 ? """["chargeback_history"]""" : "[]",
            ["is_test_account"] = 0,
            ["created_at"] = Timestamp(signup),
            ["updated_at"] = Timestamp(lastLogin),
            ["deleted_at"] = null,
        };

        var orderCount = random.Next(0, 6);
        var orders = new List<IReadOnlyDictionary<string, object?>>(orderCount);
        var orderTime = signup;
        for (var n = 0; n < orderCount; n++)
        {
            orderTime = orderTime.AddDays(random.Next(3, 120)).AddMinutes(random.Next(0, 1_440));
            var lineCount = random.Next(1, 3);
            var lines = new List<(string Sku, string Name, int Quantity, long UnitPriceCents)>(lineCount);
            for (var l = 0; l < lineCount; l++)
            {
                var product = Products[random.Next(Products.Length)].Split('|');
                lines.Add((product[0], product[1], random.Next(1, 5), random.Next(500, 25_000)));
            }

            orders.Add(Order(
                "ord_" + RandomToken(random, 12),
                id,
                Timestamp(orderTime),
                OrderStatuses[random.Next(OrderStatuses.Length)],
                location.Currency,
                lines,
                $"Dock {i}, {street} Depot",
                "pay_" + RandomToken(random, 10)));
        }

        return new SeedCustomer(row, orders);
    }

    private static Dictionary<string, object?> Order(
        string id,
        string customerId,
        string createdAt,
        string status,
        string currency,
        IReadOnlyList<(string Sku, string Name, int Quantity, long UnitPriceCents)> lines,
        string shippingAddress,
        string paymentReference)
    {
        var items = string.Join(',', lines.Select(static l => string.Create(
            CultureInfo.InvariantCulture,
            $$"""{"sku":"{{l.Sku}}","name":"{{l.Name}}","qty":{{l.Quantity}},"unit_price_cents":{{l.UnitPriceCents}}}""")));

        return new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = id,
            ["customer_id"] = customerId,
            ["created_at"] = createdAt,
            ["updated_at"] = createdAt,
            ["status"] = status,
            ["total_cents"] = lines.Sum(static l => l.Quantity * l.UnitPriceCents),
            ["currency"] = currency,
            ["items_json"] = "[" + items + "]",
            ["shipping_address"] = shippingAddress,
            ["payment_reference"] = paymentReference,
        };
    }

    private static string RandomToken(Random random, int length) =>
        string.Create(length, random, static (span, r) =>
        {
            for (var k = 0; k < span.Length; k++)
            {
                span[k] = IdAlphabet[r.Next(IdAlphabet.Length)];
            }
        });

    private static string Date(DateTime value) => value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    internal static string Timestamp(DateTime value) => value.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
