import os

import requests

# Lấy danh sách twins
headers = {
    'Authorization': f"Bearer {os.environ['TWINEXPERT_API_KEY']}",
    'Content-Type': 'application/json'
}

response = requests.get(
    f"{os.environ['TWINEXPERT_API_URL']}/twins",
    headers=headers
)

twins = response.json()['data']
print(f'Found {len(twins)} twins')
