using ControlPlane.Upstreams.Stdio;

namespace ControlPlane.Tests.Upstreams.Stdio;

/// <summary>The stdio settings a host refuses to start with, each message naming its key.</summary>
public sealed class UpstreamStdioOptionsTests
{
    [Theory]
    [InlineData("/srv/cp/data", "/srv/cp/data")]
    [InlineData("/srv/cp/data/upstreams", "/srv/cp/data")]
    [InlineData("/srv/cp", "/srv/cp/data")]
    public void A_work_directory_that_is_holds_or_lies_in_the_data_directory_is_refused(string work, string data)
    {
        var why = new UpstreamStdioOptions { WorkDirectory = work }.RefuseWorkDirectory(data);
        Assert.NotNull(why);
        Assert.Contains("ControlPlane:Upstreams:Stdio:WorkDirectory", why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sibling_of_the_data_directory_is_fine() =>
        Assert.Null(new UpstreamStdioOptions { WorkDirectory = "/srv/cp/data-upstreams/silo-11111" }.RefuseWorkDirectory("/srv/cp/data"));

    [Fact]
    public void The_silos_own_settings_cannot_be_passed_to_children()
    {
        var problems = new UpstreamStdioOptions { PassEnvironment = ["NODE_EXTRA_CA_CERTS", "ConnectionStrings__ControlPlane", "ControlPlane__Audit__HashKey", "A=B"] }.Validate().ToList();
        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.Contains("PassEnvironment:1", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("PassEnvironment:2", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("PassEnvironment:3", StringComparison.Ordinal));
    }

    [Fact]
    public void Commands_are_allowed_only_as_written()
    {
        var options = new UpstreamStdioOptions { AllowedCommands = ["node"] };
        Assert.Null(options.Refuse("node"));
        Assert.NotNull(options.Refuse("/usr/bin/node"));
        Assert.NotNull(options.Refuse("Node"));
        Assert.Contains("empty: no stdio upstream may run", new UpstreamStdioOptions().Refuse("node"), StringComparison.Ordinal);
    }
}
