# pytest-amipolicy: gathers every Windows fact in one run, prints one JSON document.
# Runs on Windows PowerShell 3.0 and later (Server 2012 onwards). It never prints a
# secret: for passwords it says only whether one is present and where.
# A fact that cannot be read is left out and its error is kept under "errors", so
# that a policy reading it reports an error instead of a pass.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$R = @{ schema = 1; errors = @{} }
$PF = $env:ProgramFiles
$PD = $env:ProgramData

try {
  $o = Get-WmiObject Win32_OperatingSystem
  # PROCESSOR_ARCHITEW6432 is set when this PowerShell is 32-bit on a 64-bit OS.
  $pa = $env:PROCESSOR_ARCHITEW6432; if (-not $pa) { $pa = $env:PROCESSOR_ARCHITECTURE }
  $R.os = @{ caption = [string]$o.Caption; version = [string]$o.Version; build = [string]$o.BuildNumber
    architecture = [string]$o.OSArchitecture; processor_architecture = [string]$pa }
} catch { $R.errors.os = "$_" }

try {
  $R.local_users = @(Get-WmiObject Win32_UserAccount -Filter 'LocalAccount=True' | ForEach-Object {
    @{ name = [string]$_.Name; sid = [string]$_.SID; enabled = -not $_.Disabled } })
} catch { $R.errors.local_users = "$_" }

# Groups are found by well-known SID; ADSI lists members even when a member's
# account was deleted (where Get-LocalGroupMember fails), giving its bare SID.
$R.groups = @{}
foreach ($g in 'S-1-5-32-544', 'S-1-5-32-555') {
  try {
    $n = (New-Object Security.Principal.SecurityIdentifier $g).Translate([Security.Principal.NTAccount]).Value.Split('\')[-1]
    $a = [ADSI]"WinNT://$env:COMPUTERNAME/$n,group"
    $m = @($a.psbase.Invoke('Members') | ForEach-Object {
      $t = $_.GetType()
      $b = $t.InvokeMember('objectSid', 'GetProperty', $null, $_, $null)
      @{ name = [string]$t.InvokeMember('Name', 'GetProperty', $null, $_, $null)
         sid = (New-Object Security.Principal.SecurityIdentifier ($b, 0)).Value } })
    $R.groups[$g] = @{ name = $n; members = $m }
  } catch { $R.groups[$g] = @{ error = "$_" } }
}

try {
  $R.services = @{}
  Get-Service -Name 'EC2Launch', 'AmazonSSMAgent', 'Ec2Config', 'TermService' -ErrorAction SilentlyContinue |
    ForEach-Object { $R.services[$_.Name] = [string]$_.Status }
} catch { $R.errors.services = "$_" }

$V2 = "$PD\Amazon\EC2Launch\config\agent-config.yml"
$V1 = "$PD\Amazon\EC2-Windows\Launch\Config\LaunchConfig.json"
$CX = "$PF\Amazon\Ec2ConfigService\Settings\config.xml"
$known = "$PF\Amazon\EC2Launch\EC2Launch.exe", $V2,
  "$PD\Amazon\EC2-Windows\Launch\Module\Ec2Launch.psd1",
  "$PD\Amazon\EC2-Windows\Launch\Scripts\InitializeInstance.ps1", $V1,
  "$PF\Amazon\Ec2ConfigService\Ec2Config.exe", $CX
try { $R.paths = @($known | Where-Object { Test-Path -LiteralPath $_ }) } catch { $R.errors.paths = "$_" }

# Launch agent settings; the YAML of EC2Launch v2 is scanned line by line since
# Windows PowerShell has no YAML reader: the "type:" under setAdminAccount.
$R.launch = @{}
if (Test-Path -LiteralPath $V2) {
  try {
    $v = @{ admin_task = $false; password_type = $null }; $in = $false
    foreach ($l in Get-Content -LiteralPath $V2) {
      if ($l -match '^\s*#') { continue }
      if ($l -match 'task:\s*(\w+)') { $in = $Matches[1] -eq 'setAdminAccount'; if ($in) { $v.admin_task = $true } }
      elseif ($in -and $l -match '^\s*type:\s*(\w+)') { $v.password_type = $Matches[1] }
    }
    $R.launch.v2 = $v
  } catch { $R.errors.launch_v2 = "$_" }
}
if (Test-Path -LiteralPath $V1) {
  try {
    $j = Get-Content -LiteralPath $V1 -Raw | ConvertFrom-Json
    $R.launch.v1 = @{ admin_password_type = [string]$j.adminPasswordType; handle_user_data = $j.handleUserData }
  } catch { $R.errors.launch_v1 = "$_" }
}
if (Test-Path -LiteralPath $CX) {
  try {
    $c = @{}
    foreach ($p in ([xml](Get-Content -LiteralPath $CX -Raw)).Ec2ConfigurationSettings.Plugins.Plugin) {
      if ('Ec2SetPassword', 'Ec2HandleUserData', 'Ec2WindowsActivate' -contains $p.Name) { $c[[string]$p.Name] = [string]$p.State }
    }
    $R.launch.ec2config = $c
  } catch { $R.errors.launch_ec2config = "$_" }
}

# Remote desktop: the local setting, the Group Policy one (which wins when it
# is set), the service's start mode, and the firewall rules of its group (found
# by the group's resource string, which is not translated).
try {
  $R.rdp = @{ deny_connections = (Get-ItemProperty 'HKLM:\System\CurrentControlSet\Control\Terminal Server').fDenyTSConnections }
  try {
    $g = Get-ItemProperty 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services' -ErrorAction Stop
    $R.rdp.policy_deny_connections = $g.fDenyTSConnections
  } catch [Management.Automation.ItemNotFoundException] { $R.rdp.policy_deny_connections = $null
  } catch { $R.errors.rdp_policy = "$_" }
  try {
    $t = Get-WmiObject Win32_Service -Filter "Name='TermService'"
    $R.rdp.service_start_mode = 'absent'; if ($t) { $R.rdp.service_start_mode = [string]$t.StartMode }
  } catch { $R.errors.rdp_service = "$_" }
  try {
    $R.rdp.firewall = @(Get-NetFirewallRule -Group '@FirewallAPI.dll,-28752' -ErrorAction Stop | ForEach-Object {
      @{ name = [string]$_.DisplayName; enabled = [string]$_.Enabled; direction = [string]$_.Direction; profile = [string]$_.Profile } })
  } catch { $R.errors.rdp_firewall = "$_" }
} catch { $R.errors.rdp = "$_" }

try {
  $w = Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon'
  $d = 'absent'
  if ($w.PSObject.Properties['DefaultPassword']) { $d = 'empty'; if ([string]$w.DefaultPassword) { $d = 'set' } }
  $R.winlogon = @{ auto_admin_logon = [string]$w.AutoAdminLogon; default_password = $d }
} catch { $R.errors.winlogon = "$_" }

# Sysprep blanks or masks passwords it consumed; anything else left is a finding.
$R.unattend_passwords = @()
foreach ($f in "$env:windir\Panther\Unattend.xml", "$env:windir\Panther\Unattend\Unattend.xml",
  "$env:windir\System32\Sysprep\unattend.xml", "$env:windir\System32\Sysprep\Panther\unattend.xml",
  "$env:SystemDrive\unattend.xml", "$env:SystemDrive\autounattend.xml",
  "$PD\Amazon\EC2Launch\sysprep\unattend.xml", "$PD\Amazon\EC2-Windows\Launch\Sysprep\Unattend.xml",
  "$PF\Amazon\Ec2ConfigService\sysprep2008.xml") {
  try {
    if (-not (Test-Path -LiteralPath $f)) { continue }
    $x = [xml](Get-Content -LiteralPath $f -Raw)
    $hit = $x.SelectNodes("//*[contains(local-name(),'Password')]/*[local-name()='Value'] | //*[local-name()='Password' and not(*)]") |
      Where-Object { $_.InnerText.Trim() -and $_.InnerText.Trim() -ne '*SENSITIVE*DATA*DELETED*' }
    if ($hit) { $R.unattend_passwords += $f }
  } catch { $R.errors["unattend $f"] = "$_" }
}

# Saved credentials are files in each profile; cmdkey /list would show only those
# of the user WinRM logged in as. Counted per folder (Vault: *.vcrd only, its
# Policy.vpol exists in every profile); an unreadable folder is an error. Links
# ("Default User", "All Users") are skipped: they lead to folders counted already.
$R.saved_credentials = @{}
try {
  $ps = @(Get-ChildItem -LiteralPath "$env:SystemDrive\Users" -Force -ErrorAction Stop | Where-Object { $_.PSIsContainer -and -not ($_.Attributes -band [IO.FileAttributes]::ReparsePoint) } | ForEach-Object { $_.FullName })
  $ps += "$env:windir\System32\config\systemprofile", "$env:windir\ServiceProfiles\LocalService", "$env:windir\ServiceProfiles\NetworkService"
  foreach ($p in $ps) {
    foreach ($sub in 'AppData\Local\Microsoft\Credentials', 'AppData\Roaming\Microsoft\Credentials', 'AppData\Local\Microsoft\Vault') {
      $d = Join-Path $p $sub
      try {
        $f = @(Get-ChildItem -LiteralPath $d -Force -Recurse -ErrorAction Stop | Where-Object { -not $_.PSIsContainer })
        if ($sub -like '*Vault') { $f = @($f | Where-Object { $_.Name -like '*.vcrd' }) }
        if ($f.Count) { $R.saved_credentials[$d] = $f.Count }
      } catch [Management.Automation.ItemNotFoundException] {
      } catch { $R.errors["credentials $d"] = "$_" }
    }
  }
} catch { $R.Remove('saved_credentials'); $R.errors.saved_credentials = "$_" }

# Non-ASCII characters are escaped so that the console code page cannot garble names.
$s = ConvertTo-Json $R -Depth 6 -Compress
$b = New-Object Text.StringBuilder
foreach ($ch in $s.ToCharArray()) {
  if ([int]$ch -lt 128) { [void]$b.Append($ch) } else { [void]$b.Append(('\u{0:x4}' -f [int]$ch)) }
}
[Console]::Out.Write($b.ToString())
exit 0
