using ControlPlane.Cli;

return await CliApp.RunAsync(args, new CliContext());
