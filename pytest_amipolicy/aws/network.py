"""Where the throwaway instance lives and who may reach it.

The instance gets a security group of its own that admits only the admin ports
and only from one address range: by default the public address this run comes
from, so nothing else on the internet can reach a machine under test.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import urllib.request
from typing import Any

from pytest_amipolicy.aws.session import DENIED_CODES, error_code, translated
from pytest_amipolicy.errors import CloudError

logger = logging.getLogger(__name__)

CHECKIP_URL = "https://checkip.amazonaws.com"

# The ports a checker needs: SSH for Linux; WinRM over HTTPS and RDP for Windows.
ADMIN_PORTS = {"linux": (22,), "windows": (5986, 3389)}


def lookup_public_address(timeout: float = 10.0) -> str:
    """Return this machine's public IPv4 address as AWS sees it."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=timeout) as response:
            text = response.read(64).decode("ascii", "replace").strip()
        address = ipaddress.ip_address(text)
    except (OSError, ValueError) as error:
        raise CloudError(
            f"cannot find this machine's public address from {CHECKIP_URL} ({error}): "
            "pass --ami-ingress-cidr=ADDRESS/32"
        ) from error
    return str(address)


def ingress_cidr(configured: str | None, lookup: Any = lookup_public_address) -> str:
    """Return the range allowed to reach the instance: configured, else our address."""
    if configured:
        return configured

    address = ipaddress.ip_address(lookup())
    return f"{address}/{address.max_prefixlen}"


def find_vpc(ec2: Any, subnet_id: str | None, region: str) -> tuple[str, str | None]:
    """Return (VPC id, subnet id or None) to launch in: the subnet's, else the default.

    Raises :class:`CloudError` when no subnet is given and the region has no
    default VPC, naming the option that fixes it.
    """
    if subnet_id:
        try:
            with translated("DescribeSubnets", region):
                subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        except CloudError as error:
            if error_code(error.__cause__) == "InvalidSubnetID.NotFound":
                raise CloudError(
                    f"subnet {subnet_id} does not exist in {region}: "
                    "pass --ami-subnet with a subnet of that region"
                ) from error
            raise
        return str(subnets[0]["VpcId"]), subnet_id

    with translated("DescribeVpcs", region):
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
    if not vpcs.get("Vpcs"):
        raise CloudError(
            f"region {region} has no default VPC: pass --ami-subnet=subnet-... "
            "with a subnet the instance may use"
        )
    return str(vpcs["Vpcs"][0]["VpcId"]), None


def vpc_cidr(ec2: Any, vpc_id: str, region: str) -> str:
    """Return the VPC's primary IPv4 range."""
    with translated("DescribeVpcs", region):
        vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    return str(vpcs[0]["CidrBlock"])


def pick_subnet(ec2: Any, vpc_id: str, instance_type: str, region: str) -> str | None:
    """Return a default subnet of ``vpc_id`` in a zone that offers ``instance_type``.

    Some zones lack some types (t3 in us-east-1e); letting EC2 choose can land
    there and fail. None means: let EC2 choose after all, which is also what
    happens when either lookup is refused, since this is only a precaution.
    """
    try:
        with translated("DescribeSubnets", region):
            subnets = ec2.describe_subnets(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "default-for-az", "Values": ["true"]},
                ]
            )["Subnets"]
        with translated("DescribeInstanceTypeOfferings", region):
            offerings = ec2.describe_instance_type_offerings(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": [instance_type]}],
            )["InstanceTypeOfferings"]
    except CloudError as error:
        if error_code(error.__cause__) not in DENIED_CODES:
            raise
        logger.warning(
            "cannot pick a zone that offers %s, EC2 will choose: %s",
            instance_type,
            error,
        )
        return None

    zones = {offering["Location"] for offering in offerings}
    usable = sorted(
        (s for s in subnets if s["AvailabilityZone"] in zones),
        key=lambda s: s["AvailabilityZone"],
    )
    if not usable:
        return None
    return str(usable[0]["SubnetId"])


def create_security_group(
    ec2: Any,
    *,
    name: str,
    vpc_id: str,
    tags: list[dict[str, str]],
    region: str,
) -> str:
    """Create the run's security group and return its id.

    The caller records the id before the ingress rules are added, so that a
    failure while authorizing still leaves a group the cleanup knows about.
    """
    with translated("CreateSecurityGroup", region):
        group = ec2.create_security_group(
            GroupName=name,
            Description="pytest-amipolicy: admin access for one check run",
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
        )
    return str(group["GroupId"])


def allow_admin_ports(
    ec2: Any, group_id: str, ports: tuple[int, ...], cidr: str, region: str
) -> None:
    """Admit TCP ``ports`` from ``cidr`` only."""
    family = "Ipv6Ranges" if ":" in cidr else "IpRanges"
    key = "CidrIpv6" if ":" in cidr else "CidrIp"
    permissions = [
        {
            "IpProtocol": "tcp",
            "FromPort": port,
            "ToPort": port,
            family: [{key: cidr, "Description": "pytest-amipolicy checker"}],
        }
        for port in ports
    ]
    with translated("AuthorizeSecurityGroupIngress", region):
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=permissions
        )


def find_run_groups(
    ec2: Any, name: str, tag: str, run_id: str, region: str
) -> list[str]:
    """Return the ids of the run's security groups, by name and run tag.

    An interrupt inside CreateSecurityGroup can leave a group whose id never
    came back; the name is the run's own, so it is found here.
    """
    with translated("DescribeSecurityGroups", region):
        groups = ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": f"tag:{tag}", "Values": [run_id]},
            ]
        )["SecurityGroups"]
    return [str(group["GroupId"]) for group in groups]


def delete_security_group(
    ec2: Any, group_id: str, region: str, attempts: int = 10, delay: float = 5.0
) -> bool:
    """Delete the group; return False if it was already gone.

    Called only once the instance is terminated, whose network interface can
    still hold the group for a little while: DependencyViolation is retried.
    """
    for attempt in range(1, attempts + 1):
        try:
            with translated("DeleteSecurityGroup", region):
                ec2.delete_security_group(GroupId=group_id)
            return True
        except CloudError as error:
            code = error_code(error.__cause__)
            if code == "InvalidGroup.NotFound":
                return False
            if code != "DependencyViolation" or attempt == attempts:
                raise
            logger.debug("security group %s still in use, retrying", group_id)
            time.sleep(delay)
    return False
