using ControlPlane.Guard.Catalog;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Guard;

/// <summary>The catalog's per-tenant views: a tenant's own registration of a server id replaces the global one for it alone.</summary>
public sealed class ToolCatalogTenantViewTests
{
    [Fact]
    public void A_tenants_own_registration_replaces_the_global_one_for_that_tenant_only()
    {
        var catalog = new ToolCatalog([]);
        catalog.SetServerTools("gh", [Tool("gh", null, "search"), Tool("gh", null, "global_only")]);
        catalog.SetServerTools("gh", "acme", [Tool("gh", "acme", "search")]);
        catalog.SetServerTools("private", "beta", [Tool("private", "beta", "peek")]);

        Assert.Equal("acme", catalog.Find(null, "gh__search", "acme")!.TenantId);
        Assert.Null(catalog.Find(null, "gh__global_only", "acme"));
        Assert.Null(catalog.Find("gh", "global_only", "acme"));
        Assert.Null(catalog.Find(null, "gh__search", "other")!.TenantId);
        Assert.NotNull(catalog.Find(null, "gh__global_only", "other"));

        // Another tenant's registration does not exist for anyone else, not even as a server.
        Assert.Null(catalog.Find(null, "private__peek", "acme"));
        Assert.False(catalog.Serves("private", "acme"));
        Assert.True(catalog.Serves("private", "beta"));
        Assert.Equal(["gh__global_only", "gh__search", "private__peek"], catalog.ForEndpoint(null, "beta").Select(t => t.PublicName).Order(StringComparer.Ordinal));

        // Removing the tenant's registration hands it the global one again; the global one was never touched.
        catalog.RemoveRegistration("gh", "acme");
        Assert.Null(catalog.Find(null, "gh__search", "acme")!.TenantId);
        Assert.NotNull(catalog.Find(null, "gh__global_only", "acme"));
        Assert.Equal(2, catalog.ForRegistration("gh", null).Count());
    }

    [Fact]
    public void A_registration_with_no_tools_yet_already_hides_the_global_one()
    {
        var catalog = new ToolCatalog([]);
        catalog.SetServerTools("gh", [Tool("gh", null, "search")]);
        catalog.SetServerTools("gh", "acme", []);
        Assert.True(catalog.Serves("gh", "acme"));
        Assert.Empty(catalog.ForEndpoint("gh", "acme"));
        Assert.Null(catalog.Find(null, "gh__search", "acme"));
    }

    [Fact]
    public void A_clash_in_any_tenants_view_is_refused_and_leaves_the_catalog_as_it_was()
    {
        var catalog = new ToolCatalog([]);
        catalog.SetServerTools("a", "acme", [Tool("a", "acme", "x", publicName: "same")]);
        Assert.Throws<InvalidOperationException>(() => catalog.SetServerTools("b", [Tool("b", null, "y", publicName: "same")]));
        Assert.False(catalog.HasServer("b"));

        // The same public name in two different tenants' views is no clash.
        catalog.SetServerTools("b", "beta", [Tool("b", "beta", "y", publicName: "same")]);
        Assert.Equal("a", catalog.Find(null, "same", "acme")!.ServerId);
        Assert.Equal("b", catalog.Find(null, "same", "beta")!.ServerId);
    }

    private static ToolDescriptor Tool(string serverId, string? tenantId, string name, string? publicName = null) =>
        new(serverId, new Tool { Name = name }, ToolClassification.Read, static (_, _) => ValueTask.FromResult(new CallToolResult()),
            publicName ?? serverId + ToolCatalog.Separator + name)
        {
            TenantId = tenantId,
        };
}
